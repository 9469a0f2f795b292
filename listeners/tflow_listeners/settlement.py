"""What a queue listener decided about one received message, and whether the queue was
told: one vocabulary for every queue (delete / complete, leave for redelivery / abandon,
dead-letter)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    ACCEPTED = "accepted"  # every event started or was a duplicate: acknowledge
    NOTHING = "nothing"  # nothing to route (an S3 test event, an empty batch): acknowledge
    RETRY = "retry"  # Temporal did not accept: leave it to be delivered again
    POISON = "poison"  # not an event: dead-letter


class PoisonMessage(Exception):
    """A message that is not an event and never will be. `reason` says why (for logs and
    dead-letter descriptions); `kind` is short, a metrics label and a dead-letter reason
    (`malformed-json`, `not-an-event`, ...)."""

    def __init__(self, reason: str, kind: str = "not-an-event") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass
class Settled:
    """One received message: the verdict, and what the queue confirmed. Both flags stay
    False when the queue refused the settlement (lock lost, call failed): the message is
    delivered again, and its events are then duplicates, so nothing is lost."""

    message_id: str
    verdict: Verdict
    reason: str = ""
    # Removed from the queue: acknowledged (SQS delete, Service Bus complete), or moved
    # to a dead-letter queue (then `dead_lettered` too).
    acknowledged: bool = False
    dead_lettered: bool = False
    poison: PoisonMessage | None = field(default=None, repr=False, compare=False)

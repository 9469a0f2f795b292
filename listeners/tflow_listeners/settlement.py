"""What a queue listener decided about one received message, and whether the queue was
told: one vocabulary for SQS and Service Bus (delete / complete, leave for redelivery /
abandon, dead-letter)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    ACCEPTED = "accepted"  # every event started or was a duplicate: acknowledge
    NOTHING = "nothing"  # nothing to route (an S3 test event, an empty batch): acknowledge
    RETRY = "retry"  # Temporal did not accept: leave it to be delivered again
    POISON = "poison"  # not an event: dead-letter


@dataclass
class Settled:
    """One received message: the verdict, and what the queue confirmed. Both flags stay
    False when the queue refused the settlement (lock lost, call failed): the message is
    delivered again, and its events are then duplicates, so nothing is lost."""

    message_id: str
    verdict: Verdict
    reason: str = ""
    # Removed from the queue: SQS delete, Service Bus complete.
    acknowledged: bool = False
    dead_lettered: bool = False

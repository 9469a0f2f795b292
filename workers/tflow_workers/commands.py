"""The command lines of the project's processes, as the operator writes them into the pods
it makes: the worker's console script and the listeners' module with its source names.

They live in the core because the operator may not import the listeners (nor they the
operator): both sides name the same constants instead of copying strings.
"""

from __future__ import annotations

from typing import Final

# The console script of tflow_workers.worker:cli (pyproject's [project.scripts]).
WORKER_COMMAND: Final = ("tflow-worker",)

LISTENER_COMMAND: Final = ("python", "-m", "tflow_listeners")
# The first argument of LISTENER_COMMAND: which source to run. Each is also the name of
# its module in tflow_listeners.
WEBHOOK_SOURCE: Final = "webhook"
SQS_SOURCE: Final = "sqs"
SERVICE_BUS_SOURCE: Final = "servicebus"
LISTENER_SOURCES: Final = (WEBHOOK_SOURCE, SQS_SOURCE, SERVICE_BUS_SOURCE)

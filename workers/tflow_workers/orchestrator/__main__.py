"""`python -m tflow_workers.orchestrator [tflow-worker options]`: the worker process in its
orchestrator mode (`tflow-worker --serve-orchestrator`)."""

from __future__ import annotations

import sys

from tflow_workers.worker import main

if __name__ == "__main__":
    sys.exit(main(["--serve-orchestrator", *sys.argv[1:]]))

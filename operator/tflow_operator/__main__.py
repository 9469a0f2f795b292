"""``python -m tflow_operator``: run the operator (standalone, all namespaces).

The same as ``kopf run --standalone -m tflow_operator.main --all-namespaces``, plus
kopf's logging setup and, when ``TFLOW_HEALTH_PORT`` is set, a liveness endpoint at
``http://0.0.0.0:<port>/healthz``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import kopf

from tflow_operator import main as _handlers  # noqa: F401  (registers every handler)
from tflow_operator.config import Config


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflow_operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    args = parser.parse_args(argv)
    config = Config.from_env()
    kopf.configure(verbose=args.verbose, quiet=args.quiet)
    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
    kopf.run(standalone=True, clusterwide=True, liveness_endpoint=liveness)
    return 0


if __name__ == "__main__":
    sys.exit(run())

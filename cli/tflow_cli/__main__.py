"""`python -m tflow_cli` is `tflow`."""

import sys

from tflow_cli.main import main

sys.exit(main())

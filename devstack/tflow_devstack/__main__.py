"""`python -m tflow_devstack` runs the dev stack CLI."""

import sys

from tflow_devstack.stack import main

sys.exit(main())

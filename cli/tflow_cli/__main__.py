"""`python -m tflow_cli` is `tflow`."""

from tflow_cli.main import cli

cli()

"""Custom functions of the sample flows, written the way a team writes its own: plain
Python callables registered with a worker by name (see docs/custom-functions.md)."""

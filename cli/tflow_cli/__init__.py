"""`tflow`: the command line for people and scripts — run, validate, convert and draw
documents, and run a worker."""

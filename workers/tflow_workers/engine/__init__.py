"""The interpreter workflow that runs Serverless Workflow 1.0 documents on Temporal, the
activities it calls, and the catalog of custom functions."""

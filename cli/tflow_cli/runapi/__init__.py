"""The run API (`tflow run-api`): an HTTP service that starts, lists, reads and steers
runs of WorkflowDefinitions for the whole cluster, authenticated by Kubernetes tokens and
authorized by Kubernetes RBAC (docs/run-api.md). `service` holds the routes, `access`
the apiserver's reviews and definitions, `command` the process, `client` the `tflow api`
commands that call it."""

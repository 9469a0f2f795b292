"""The RootOrchestratorWorkflow: routes each CloudEvent to the flow runs its EventRoutes
name, and records the decision. See docs/root-orchestrator.md.

The package's modules are kept apart on purpose: `workflow` runs in Temporal's sandbox
and imports only `model` (plus the event model); `activities` does the I/O (the routing
table, the published definitions); `worker` puts them on a task queue.
"""

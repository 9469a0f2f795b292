"""The RootOrchestratorWorkflow: routes each CloudEvent to the flow runs its EventRoutes
name, and records the decision. See docs/root-orchestrator.md.

The package's modules are kept apart on purpose: `workflow` is the deterministic workflow
code (run outside Temporal's sandbox for speed; see its definition) and imports only
`model` (plus the event and run models); `activities` does the I/O (the routing table,
the published definitions); `worker` puts them on a task queue.
"""

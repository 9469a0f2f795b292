"""`tflow ui`: a web page that shows each definition's runs and a run on its document's
graph, with its task log, and lets an authenticated user signal, cancel or terminate runs
of the namespaces it is allowed to reach."""

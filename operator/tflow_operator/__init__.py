"""The Temporal Flow operator.

Importing the package first makes the Kubernetes client library load its API and model
classes on first use (:mod:`tflow_operator.lazy_client`), before kopf or the operator's
client imports the library.
"""

from tflow_operator import lazy_client

lazy_client.install()

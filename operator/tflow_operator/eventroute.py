"""EventRoute handlers: an index and a trigger; the publisher does the work.

Routes are cluster-wide: the EventRoutes of every namespace compile into one routing
table, the ConfigMap ``tflow-routing`` in the system namespace, which the root
orchestrator mounts. A route is in the table when its jq filter and input mapping
compile, its WorkflowDefinition (same namespace) exists and is valid, and it is enabled;
otherwise its ``Ready`` condition says why (``InvalidExpression``, ``WorkflowNotFound``,
``WorkflowInvalid``, ``Disabled``), and it is re-checked whenever definitions change.

No change handler runs per route, so kopf writes nothing on a route (no finalizer, no
annotations): its status is written by the publisher, only when it changes.
"""

from __future__ import annotations

from typing import Any, Final

import kopf

from tflow_operator.api.common import GROUP, VERSION
from tflow_operator.model import RouteInfo, route_info
from tflow_operator.workflowdefinition import runtime_of

PLURAL: Final = "eventroutes"


@kopf.index(GROUP, VERSION, PLURAL)
async def tflow_routes(body: kopf.Body, **_: Any) -> dict[tuple[str, str], RouteInfo]:
    info = route_info(body)
    return {info.key: info}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def route_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Recompile when a route's spec changed, it appeared or it went (not on status
    updates, which the publisher itself makes)."""
    runtime = runtime_of(memo)
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    if type == "DELETED":
        runtime.publisher.forget("er", key)
    else:
        fingerprint = (meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp")))
        runtime.publisher.observe("er", key, fingerprint)

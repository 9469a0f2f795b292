"""The operator's entry module: kopf settings, startup and cleanup, and the handlers of
every kind (imported here so that ``kopf run -m tflow_operator.main`` registers them).

    kopf run --standalone -m tflow_operator.main --all-namespaces
    python -m tflow_operator            # the same, with logging and a liveness probe

Settings: kopf's own bookkeeping (handler progress and the last handled spec, kept as a
digest) lives in ``status.kopf``, so that a handled change costs one status write
rather than a status write plus a metadata write; the finalizer is
``temporalflow.dev/finalizer``, put only on objects whose deletion needs work (see
:mod:`tflow_operator.workflowdefinition`); drift repair and run statistics come from one
shared loop (:mod:`tflow_operator.resync`), not per-object kopf timers; Events are
posted for warnings; API errors back off. The Temporal client is created lazily (see
:mod:`tflow_operator.temporal`), so a Temporal that is down at start delays nothing
that does not need it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import hashlib
import io
import json
import logging
import re
import signal
from typing import Any, Final

import aiohttp
import kopf

from tflow_operator import listener as _listener  # noqa: F401  (registers handlers)
from tflow_operator import workflowdefinition as _workflowdefinition  # noqa: F401
from tflow_operator.config import SERVICE_ACCOUNT_NAMESPACE_FILE, Config
from tflow_operator.eventroute import RouteWatch
from tflow_operator.kube import APISERVER_CONNECTIONS, KubeClient, load_configuration
from tflow_operator.model import RouteInfo
from tflow_operator.naming import FINALIZER
from tflow_operator.publisher import Publisher
from tflow_operator.resync import Resyncer
from tflow_operator.runtime import KopfIndices, Runtime
from tflow_operator.temporal import TemporalGateway
from tflow_workers.connection import TemporalUnavailable

log = logging.getLogger("tflow.operator")

DIGEST_PREFIX: Final = "sha256:"
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"


class StatusProgressStorage(kopf.StatusProgressStorage):
    """kopf's progress storage in ``status.kopf.progress``, without a deep copy of every
    essence it is asked to clean: kopf strips the progress fields from the old and new
    essence of each event by copying the whole essence first (the spec with its workflow
    document, twice per event), but the essences :class:`DigestDiffBaseStorage` builds
    hold no status, so there is nothing to strip, and neither kopf nor these handlers
    change them."""

    def clear(self, *, essence: Any) -> Any:
        if isinstance(essence, dict) and "status" not in essence:
            return essence
        return super().clear(essence=essence)


class DigestDiffBaseStorage(kopf.StatusDiffBaseStorage):
    """kopf's "last handled configuration", kept in the status as a digest instead of a
    JSON copy.

    kopf compares the stored essence with the object's current one to tell an update
    from a no-op. A copy of the spec doubles every object's size (a WorkflowDefinition's
    document can be large); a digest tells the same: unchanged, or changed (the handlers
    never read the diff). In the status it travels in the same write as the handler's
    own status changes.

    The essence is the same as kopf's (the object without its identity, metadata and
    status, plus its labels and the annotations no kopf operator owns), but copied
    through JSON from the fields it keeps: kopf's own deep-copies the whole object
    first, managed fields and status included, which was the largest single cost of an
    event. kopf asks for the essence of one event twice (``fetch`` and ``build``), so
    the last few are kept by resource version, with their digests.
    """

    CACHED: Final = 64

    def __init__(self) -> None:
        super().__init__(name="kopf", field="status.kopf.lastHandled")
        self._recent: collections.OrderedDict[tuple[str, str], tuple[Any, str]] = (
            collections.OrderedDict()
        )

    @staticmethod
    def digest(essence: Any) -> str:
        text = json.dumps(essence, sort_keys=True, separators=(",", ":"))
        return DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        if extra_fields or self.ignored_fields:
            return super().build(body=body, extra_fields=extra_fields)
        meta = body.get("metadata") or {}
        key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        cached = self._recent.get(key) if key[1] else None
        if cached is not None:
            return cached[0]
        essence = self._essence(body)
        if key[1]:
            self._recent[key] = (essence, self.digest(essence))
            while len(self._recent) > self.CACHED:
                self._recent.popitem(last=False)
        return essence

    def _essence(self, body: kopf.Body) -> Any:
        raw = body if isinstance(body, dict) else dict(body)
        kept: dict[str, Any] = {
            k: v for k, v in raw.items() if k not in ("apiVersion", "kind", "metadata", "status")
        }
        meta = body.get("metadata") or {}
        picked = {k: meta[k] for k in ("labels", "annotations") if k in meta}
        if picked:
            kept["metadata"] = picked
        essence: dict[str, Any] = json.loads(json.dumps(kept))
        annotations = essence.get("metadata", {}).get("annotations", {})
        ignored = self._detect_marked_prefixes(annotations)
        for name in list(annotations):
            if name == LAST_APPLIED or any(name.startswith(f"{p}/") for p in ignored):
                del annotations[name]
        self.remove_empty_stanzas(essence)  # type: ignore[arg-type]
        return essence

    def _digest_of(self, body: kopf.Body, essence: Any) -> str:
        meta = body.get("metadata") or {}
        cached = self._recent.get((str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))))
        if cached is not None and cached[0] is essence:
            return cached[1]
        return self.digest(essence)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        status = patch.setdefault("status", {})
        status.setdefault("kopf", {})["lastHandled"] = self._digest_of(body, essence)

    def fetch(self, *, body: kopf.Body) -> Any:
        stored = ((body.get("status") or {}).get("kopf") or {}).get("lastHandled")
        if not isinstance(stored, str):
            return None
        current = self.build(body=body)
        if stored.strip() == self._digest_of(body, current):
            return current
        # Changed: any essence that differs from the current one makes an update.
        return {"digest": stored.strip()}


class QuietSuccess(logging.Filter):
    """Drop kopf's "succeeded" line for the handlers that run on every event (thousands a
    minute with a thousand objects); failures still log."""

    PATTERN: Final = re.compile(
        r"^Handler '(definition_changed|listener_deployment_changed)'"
        r" succeeded\.$"
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.PATTERN.match(record.getMessage())


def configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = StatusProgressStorage(
        name="kopf", field="status.kopf.progress"
    )
    settings.persistence.diffbase_storage = DigestDiffBaseStorage()
    settings.posting.enabled = True
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "temporal-flow-operator"
    settings.networking.error_backoffs = [1, 2, 4, 8, 15, 30]
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60]
    settings.execution.max_workers = 4
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def _dump_tasks() -> None:
    """SIGUSR1: log the stack of every asyncio task (what is the operator waiting on?)."""
    tasks = asyncio.all_tasks()
    types = collections.Counter(type(o).__name__ for o in gc.get_objects())
    log.warning("SIGUSR1: %d asyncio tasks; objects: %s", len(tasks), types.most_common(20))
    for task in tasks:
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        log.warning("%s", out.getvalue())


async def _connect_later(gateway: TemporalGateway) -> None:
    """Connect (and register search attributes) now if Temporal is there; else the first
    handler that needs it connects later."""
    try:
        await gateway.client()
    except TemporalUnavailable as err:
        log.warning("%s; will retry when needed", err)


def _own_namespace() -> str | None:
    path = SERVICE_ACCOUNT_NAMESPACE_FILE
    return path.read_text().strip() if path.exists() else None


@kopf.on.login()
async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession:
    """kopf connects with the credentials the operator's own client uses, over at most
    APISERVER_CONNECTIONS connections."""
    return bounded_session(await connection_info(trust_env=settings.networking.trust_env))


def bounded_session(info: kopf.ConnectionInfo) -> kopf.AiohttpSession:
    """kopf's session for `info`, as kopf would build it but with a bounded pool: kopf's
    own has no limit, and in a burst of thousands of objects each handler's patch opened
    a TLS connection of its own, each with its buffers (336 to 403 open sockets at
    N=3000 in bench_operator.py). kopf closes the session when it logs in again (a 401)."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=APISERVER_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        aiohttp_session=session,
    )


async def connection_info(trust_env: bool) -> kopf.ConnectionInfo:
    """kopf's connection from :func:`tflow_operator.kube.load_configuration`: in a pod,
    the service account at KUBERNETES_SERVICE_HOST:PORT (kopf's own in-cluster login
    names `kubernetes.default.svc`, which needs cluster DNS that not every cluster, nor a
    bare node, has); else the kubeconfig with whatever user it names, exec plugins
    included. kopf logs in again when the apiserver answers 401, so a rotated token or an
    expired exec credential is read anew."""
    config = await load_configuration()
    header = await config.get_api_key_with_prefix("BearerToken")
    scheme, _space, token = (header or "").partition(" ")
    if not token:
        # A bare token (RFC 7235 allows a credential without a scheme).
        scheme, token = "", scheme
    if not config.host:
        raise kopf.LoginError("no apiserver address in the client configuration")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        proxy_url=config.proxy,
        default_namespace=_own_namespace(),
        trust_env=trust_env,
    )


@kopf.on.startup()
async def startup(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    config = Config.from_env()
    configure(settings)
    logging.getLogger("kopf.objects").addFilter(QuietSuccess())
    # The client logs whole response bodies at debug level, Secrets included.
    logging.getLogger("kubernetes_asyncio").setLevel(logging.INFO)
    kube = KubeClient.from_env()
    gateway = TemporalGateway(
        config.temporal_address,
        config.temporal_namespace,
        namespaces=config.temporal_namespaces.all(),
    )
    routes: dict[tuple[str, str], RouteInfo] = {}
    indices = KopfIndices(
        # kopf hands every handler the indices, by the index functions' names.
        definitions=kwargs["tflow_definitions"],
        routes=routes,
        listener_sharing=kwargs["tflow_listener_sharing"],
        listener_routing=kwargs["tflow_listener_routing"],
        router_task_queue=config.router_task_queue,
        temporal_namespaces=config.temporal_namespaces,
    )
    publisher = Publisher(config, kube, indices)
    memo.runtime = Runtime(config, kube, gateway, indices, publisher)
    memo.connect_task = asyncio.create_task(_connect_later(gateway))
    publisher.start()
    memo.route_watch = RouteWatch(kube, publisher, routes)
    memo.route_watch.start()
    memo.resyncer = Resyncer(memo.runtime)
    memo.resyncer.start()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks)
    log.info(
        "Temporal Flow operator: Temporal %s (namespace %s), system namespace %s, resync %ss",
        config.temporal_address,
        config.temporal_namespace,
        config.system_namespace,
        config.resync_seconds,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    resyncer = getattr(memo, "resyncer", None)
    if isinstance(resyncer, Resyncer):
        await resyncer.stop()
    route_watch = getattr(memo, "route_watch", None)
    if isinstance(route_watch, RouteWatch):
        await route_watch.stop()
    runtime = getattr(memo, "runtime", None)
    if isinstance(runtime, Runtime):
        await runtime.publisher.stop()
        await runtime.temporal.close()
        await runtime.kube.close()

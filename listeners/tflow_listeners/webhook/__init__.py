"""The HTTP webhook listener: events in by POST, one RootOrchestrator run per event.

Routes (docs/listeners.md has the details, `/openapi.json` the schema, generated from the
route declarations in `routes`):

- `POST /events` (the configured path; `/webhook` too): structured CloudEvents, binary-mode
  CloudEvents (`ce-*` headers), batches, plain JSON, and the shapes `envelopes` knows;
- `POST /webhook/sharepoint`, `POST|OPTIONS /webhook/azure-eventgrid`: the Microsoft
  senders, with their subscription handshakes;
- `POST /runs/{workflowId}/signal/{name}`, `GET /runs/{workflowId}`: signal a run, read
  its status; off unless enabled, authenticated, and only for runs of the Listener's own
  Kubernetes namespace (read from the run's `TflowNamespace` search attribute);
- `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json`.

A request is answered 202 only once Temporal accepted the start of every event in it
(`started`, or `duplicate` for a redelivery); 503 with Retry-After when it did not, so the
sender retries and nothing is lost. Every other refusal is a 4xx whose JSON body names the
problem: `{"status": 400, "reason": "malformed-json", "detail": "..."}`.

The parts, one job each: `settings` (configuration, secrets), `limits` (token bucket,
replay cache), `auth` (signatures, bearer token), `decode` (CloudEvents content modes),
`vendors` (SharePoint, Event Grid, the abuse-protection handshake), `runcontrol`,
`listener` (the checks every event route makes, the hand-off), `routes` (the declared
routes and the OpenAPI document), `cli` (flags and the process).
"""

from tflow_listeners.problems import MAX_JSON_DEPTH, Refusal, parse_json
from tflow_listeners.webhook.cli import add_arguments, run, settings_from
from tflow_listeners.webhook.limits import ReplayCache, TokenBucket
from tflow_listeners.webhook.listener import WebhookListener
from tflow_listeners.webhook.routes import openapi
from tflow_listeners.webhook.settings import Secret, WebhookSettings, hmac_key

__all__ = [
    "MAX_JSON_DEPTH",
    "Refusal",
    "ReplayCache",
    "Secret",
    "TokenBucket",
    "WebhookListener",
    "WebhookSettings",
    "add_arguments",
    "hmac_key",
    "openapi",
    "parse_json",
    "run",
    "settings_from",
]

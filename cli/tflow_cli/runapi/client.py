"""`tflow api ...`: the run API's client side. Each command is one request to the run API
(`--url`, `$TFLOW_API_URL`) with a Kubernetes token (`--token`, `$TFLOW_API_TOKEN`, or
`--token-file`, e.g. one from `kubectl create token`), and prints the answer as JSON; a
refusal prints its problem body on stderr and exits 1.

    tflow api start team-a/orders --input '{"orderId": "A-1"}' --id A-1
    tflow api runs team-a/orders --status running
    tflow api show team-a team-a:orders:A-1
    tflow api history team-a team-a:orders:A-1 --page-size 50
    tflow api signal team-a team-a:orders:A-1 approve --input '{"by": "ops"}'
    tflow api event team-a team-a:orders:A-1 --type approve --data '{"by": "ops"}'
    tflow api cancel team-a team-a:orders:A-1
    tflow api terminate team-a team-a:orders:A-1 --reason "duplicate order"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

# httpx is imported where a request is made: `tflow` builds its parser from this module,
# and its start-up should not load an HTTP client for that.
if TYPE_CHECKING:
    import httpx

EXIT_REFUSED = 1
EXIT_USAGE = 2


class RunApiClient:
    """The run API over HTTP; every method answers the response's JSON body."""

    def __init__(self, url: str, token: str, http: httpx.Client | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = http or httpx.Client(timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        send_null: bool = False,
    ) -> tuple[int, Any]:
        response = self.http.request(
            method,
            self.url + path,
            headers=self.headers,
            params={k: v for k, v in (query or {}).items() if v is not None},
            content=json.dumps(body) if body is not None or send_null else None,
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {"status": response.status_code, "detail": response.text}
        return response.status_code, answer

    @staticmethod
    def _run(namespace: str, workflow_id: str) -> str:
        # A workflow id may hold '/', which the API matches as it is.
        return f"/v1/namespaces/{quote(namespace)}/runs/{quote(workflow_id, safe='/:')}"

    @staticmethod
    def _runs(definition: str) -> str:
        namespace, _, name = definition.partition("/")
        if not namespace or not name:
            raise ValueError(f"{definition!r}: give the definition as <namespace>/<name>")
        return f"/v1/namespaces/{quote(namespace)}/workflowdefinitions/{quote(name)}/runs"

    def start(self, definition: str, value: Any, key: str | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"input": value}
        if key:
            body["workflowId"] = key
        return self.request("POST", self._runs(definition), body)

    def runs(
        self,
        definition: str,
        status: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[int, Any]:
        query = {"status": status, "pageSize": page_size, "pageToken": page_token}
        return self.request("GET", self._runs(definition), query=query)

    def show(self, namespace: str, workflow_id: str) -> tuple[int, Any]:
        return self.request("GET", self._run(namespace, workflow_id))

    def history(
        self,
        namespace: str,
        workflow_id: str,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[int, Any]:
        query = {"pageSize": page_size, "pageToken": page_token}
        return self.request("GET", self._run(namespace, workflow_id) + "/history", query=query)

    def signal(self, namespace: str, workflow_id: str, name: str, value: Any) -> tuple[int, Any]:
        path = self._run(namespace, workflow_id) + f"/signals/{quote(name)}"
        return self.request("POST", path, value, send_null=True)

    def event(self, namespace: str, workflow_id: str, event: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", self._run(namespace, workflow_id) + "/events", event)

    def cancel(self, namespace: str, workflow_id: str) -> tuple[int, Any]:
        return self.request("POST", self._run(namespace, workflow_id) + "/cancel")

    def terminate(
        self, namespace: str, workflow_id: str, reason: str | None = None
    ) -> tuple[int, Any]:
        body = {"reason": reason} if reason else {}
        return self.request("POST", self._run(namespace, workflow_id) + "/terminate", body)


def _json_arg(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    if value.startswith("@"):
        value = Path(value[1:]).read_text()
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise SystemExit(f"tflow: {flag} is not valid JSON: {err}") from None


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    if args.token:
        return str(args.token)
    raise SystemExit("tflow: no token: pass --token or --token-file, or set TFLOW_API_TOKEN")


def cmd_api(args: argparse.Namespace) -> int:
    import httpx

    if not args.url:
        print("tflow: no run API: pass --url or set TFLOW_API_URL", file=sys.stderr)
        return EXIT_USAGE
    api = RunApiClient(args.url, _token(args))
    try:
        status, answer = _call(api, args)
    except ValueError as err:
        print(f"tflow: {err}", file=sys.stderr)
        return EXIT_USAGE
    except httpx.HTTPError as err:
        print(f"tflow: {args.url}: {err}", file=sys.stderr)
        return EXIT_REFUSED
    stream = sys.stdout if status < 400 else sys.stderr
    json.dump(answer, stream, indent=2)
    stream.write("\n")
    return 0 if status < 400 else EXIT_REFUSED


def _call(api: RunApiClient, args: argparse.Namespace) -> tuple[int, Any]:
    action = args.api_command
    if action == "start":
        return api.start(args.definition, _json_arg(args.input, "--input"), args.id)
    if action == "runs":
        return api.runs(args.definition, args.status, args.page_size, args.page_token)
    if action == "show":
        return api.show(args.namespace, args.workflow_id)
    if action == "history":
        return api.history(args.namespace, args.workflow_id, args.page_size, args.page_token)
    if action == "signal":
        return api.signal(
            args.namespace, args.workflow_id, args.name, _json_arg(args.input, "--input")
        )
    if action == "event":
        event: dict[str, Any] = {"type": args.type, "source": args.source}
        if args.data is not None:
            event["data"] = _json_arg(args.data, "--data")
        return api.event(args.namespace, args.workflow_id, event)
    if action == "cancel":
        return api.cancel(args.namespace, args.workflow_id)
    return api.terminate(args.namespace, args.workflow_id, args.reason)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = os.environ.get
    api = sub.add_parser("api", help="call the run API: start, list, read and steer runs")
    api.add_argument("--url", default=env("TFLOW_API_URL"), help="the run API's base URL")
    api.add_argument("--token", default=env("TFLOW_API_TOKEN"), help="a Kubernetes token")
    api.add_argument("--token-file", help="a file holding the token")
    actions = api.add_subparsers(dest="api_command", required=True, metavar="COMMAND")

    start = actions.add_parser("start", help="start a run of a definition")
    start.add_argument("definition", help="<namespace>/<name>")
    start.add_argument("--input", help="the input as JSON, or @file.json")
    start.add_argument("--id", help="an idempotency key: the same key starts one run")

    runs = actions.add_parser("runs", help="one page of a definition's runs, newest first")
    runs.add_argument("definition", help="<namespace>/<name>")
    runs.add_argument(
        "--status",
        choices=[
            "running",
            "completed",
            "failed",
            "cancelled",
            "terminated",
            "timedout",
            "continuedasnew",
        ],
    )
    runs.add_argument("--page-size", type=int)
    runs.add_argument("--page-token", help="nextPageToken of the previous page")

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("namespace", help="the run's Kubernetes namespace")
        p.add_argument("workflow_id")

    run_args(actions.add_parser("show", help="a run's status, output and task log"))
    history = actions.add_parser("history", help="a page of a run's Temporal events")
    run_args(history)
    history.add_argument("--page-size", type=int)
    history.add_argument("--page-token", help="nextPageToken of the previous page")
    signal = actions.add_parser("signal", help="send a signal to a run")
    run_args(signal)
    signal.add_argument("name")
    signal.add_argument("--input", help="the signal's argument as JSON, or @file.json")
    event = actions.add_parser("event", help="deliver a CloudEvent to a run")
    run_args(event)
    event.add_argument("--type", required=True)
    event.add_argument("--source", default="tflow-cli")
    event.add_argument("--data", help="the event's data as JSON, or @file.json")
    run_args(actions.add_parser("cancel", help="request a run's cancellation"))
    terminate = actions.add_parser("terminate", help="stop a run at once")
    run_args(terminate)
    terminate.add_argument("--reason")
    api.set_defaults(func=cmd_api)

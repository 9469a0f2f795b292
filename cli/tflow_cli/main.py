"""The `tflow` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tflow_cli import output
from tflow_cli.documents import DocumentFileError, load_all, single_workflow, workflows_in

EXIT_INVALID = 1
EXIT_USAGE = 2


def _input_arg(value: str | None) -> Any:
    if value is None:
        return None
    if value.startswith("@"):
        value = Path(value[1:]).read_text()
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise SystemExit(f"tflow: --input is not valid JSON: {err}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    from tflow_workers.dsl.validate import validate_document

    bad = 0
    checked = 0
    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            found, skipped = workflows_in(path)
        except DocumentFileError as err:
            results.append({"source": str(path), "valid": False, "errors": [str(err)]})
            bad += 1
            continue
        for note in skipped:
            results.append({"source": note.split(":", 1)[0], "skipped": note.split(": ", 1)[1]})
        for item in found:
            checked += 1
            issues = [str(i) for i in validate_document(item.document)]
            if item.manifest is not None:
                issues = _manifest_issues(item.manifest) + issues
            results.append({"source": item.source, "valid": not issues, "errors": issues})
            bad += bool(issues)
    if args.output == "json":
        output.print_json(results, sys.stdout)
    else:
        for r in results:
            if "skipped" in r:
                if args.verbose:
                    print(f"{r['source']}: skipped: {r['skipped']}")
            elif r["valid"]:
                print(f"{r['source']}: valid")
            else:
                for e in r["errors"]:
                    print(f"{r['source']}: {e}")
        if checked == 0 and bad == 0:
            print("no workflow documents found", file=sys.stderr)
    return EXIT_INVALID if bad or checked == 0 else 0


def _manifest_issues(manifest: dict[str, Any]) -> list[str]:
    """What the apiserver would also refuse, checked offline with the API models."""
    from pydantic import ValidationError

    from tflow_operator.api import WorkflowDefinitionSpec

    try:
        WorkflowDefinitionSpec.model_validate(manifest.get("spec") or {})
    except ValidationError as err:
        return [f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
    return []


def cmd_run(args: argparse.Namespace) -> int:
    from tflow_cli.runner import NoServerError, run_document
    from tflow_workers.dsl.durations import parse_duration
    from tflow_workers.dsl.validate import validate_document
    from tflow_workers.engine.catalog import discover, parse_specs

    found = single_workflow(args.file)
    issues = validate_document(found.document)
    if issues:
        for issue in issues:
            print(f"{found.source}: {issue}", file=sys.stderr)
        return EXIT_INVALID
    timeout = parse_duration(args.timeout) if args.timeout else None
    try:
        report = asyncio.run(
            run_document(
                found.document,
                _input_arg(args.input),
                address=args.address,
                namespace=args.namespace,
                task_queue=args.task_queue,
                execution_timeout=timeout,
                functions=discover(parse_specs(args.function)),
                definitions_dir=args.definitions_dir,
                secrets_dir=args.secrets_dir,
                progress=sys.stderr if sys.stderr.isatty() and args.output != "json" else None,
            )
        )
    except NoServerError as err:
        print(f"tflow: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.output == "json":
        output.print_json(report.as_data(), sys.stdout)
    else:
        print(f"workflow {report.workflow_id}: {report.status}")
        if report.error:
            print("error:")
            print(yaml.safe_dump(report.error, sort_keys=False).rstrip())
        else:
            print("output:")
            print(json.dumps(report.output, indent=2))
        print()
        output.task_log(report.log, sys.stdout)
    return 0 if report.status == "completed" else EXIT_INVALID


def cmd_convert(args: argparse.Namespace) -> int:
    from tflow_workers.convert import ConversionError, convert

    docs = load_all(args.file)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        print(f"tflow: {args.file}: expected one mapping to convert", file=sys.stderr)
        return EXIT_USAGE
    try:
        converted = convert(docs[0], args.format, name=args.name, namespace=args.namespace)
    except ConversionError as err:
        print(f"tflow: {args.file}: {err}", file=sys.stderr)
        return EXIT_INVALID
    if args.output == "json":
        output.print_json(converted, sys.stdout)
    else:
        sys.stdout.write(yaml.safe_dump(converted, sort_keys=False))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from tflow_workers.graph import to_mermaid, to_svg

    found = single_workflow(args.file)
    fmt = args.format or ("svg" if args.out and args.out.suffix == ".svg" else "mermaid")
    text = to_svg(found.document) if fmt == "svg" else to_mermaid(found.document)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


async def _client(args: argparse.Namespace) -> Any:
    from tflow_workers.connection import connect

    if not args.address:
        raise SystemExit("tflow: no Temporal server: set TEMPORAL_ADDRESS or pass --address")
    return await connect(args.address, args.namespace)


def cmd_runs_list(args: argparse.Namespace) -> int:
    from tflow_cli.runs import list_runs, print_runs

    async def go() -> list[dict[str, Any]]:
        return await list_runs(await _client(args), args.definition, args.status, args.limit)

    rows = asyncio.run(go())
    if args.output == "json":
        output.print_json(rows, sys.stdout)
    elif rows:
        print_runs(rows)
    else:
        print("no runs found", file=sys.stderr)
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from tflow_cli.runs import print_run, show_run

    async def go() -> dict[str, Any]:
        return await show_run(await _client(args), args.workflow_id)

    try:
        report = asyncio.run(go())
    except RPCError as err:
        print(f"tflow: {args.workflow_id}: {err.message}", file=sys.stderr)
        return EXIT_INVALID
    if args.output == "json":
        output.print_json(report, sys.stdout)
    else:
        print_run(report)
    return 0


def cmd_signal(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    async def go() -> None:
        client = await _client(args)
        await client.get_workflow_handle(args.workflow_id).signal(args.name, _input_arg(args.input))

    try:
        asyncio.run(go())
    except RPCError as err:
        print(f"tflow: {args.workflow_id}: {err.message}", file=sys.stderr)
        return EXIT_INVALID
    print(f"signalled {args.name} to {args.workflow_id}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    async def go() -> None:
        client = await _client(args)
        await client.get_workflow_handle(args.workflow_id).cancel()

    try:
        asyncio.run(go())
    except RPCError as err:
        print(f"tflow: {args.workflow_id}: {err.message}", file=sys.stderr)
        return EXIT_INVALID
    print(f"requested cancellation of {args.workflow_id}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from tflow_workers.cloudevents import EventFormatError, from_plain_json

    if args.file:
        body = json.loads(Path(args.file).read_text()) if args.file != "-" else json.load(sys.stdin)
    else:
        if not args.type:
            print("tflow: give an event file, or --type (and --source, --data)", file=sys.stderr)
            return EXIT_USAGE
        body = {"type": args.type, "source": args.source, "data": _input_arg(args.data) or {}}
        if args.id:
            body["id"] = args.id
    if args.webhook:
        from tflow_cli.runs import send_via_webhook

        answer = asyncio.run(send_via_webhook(args.webhook, body, args.token))
        if args.output == "json":
            output.print_json(answer, sys.stdout)
        else:
            print(
                f"{args.webhook} answered {answer['httpStatus']}: "
                f"{json.dumps({k: v for k, v in answer.items() if k != 'httpStatus'})}"
            )
        return 0 if answer["httpStatus"] == 202 else EXIT_INVALID
    try:
        event = from_plain_json(body, default_source="tflow-cli")
    except EventFormatError as err:
        print(f"tflow: {err}", file=sys.stderr)
        return EXIT_INVALID

    async def go() -> str:
        from tflow_listeners.handoff import HandOff

        return await HandOff(await _client(args), args.router_task_queue).submit(event)

    outcome = asyncio.run(go())
    from tflow_workers.cloudevents import event_workflow_id

    result = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "outcome": outcome,
        "workflowId": event_workflow_id(event.source, event.id),
    }
    if args.output == "json":
        output.print_json(result, sys.stdout)
    else:
        print(
            f"event {event.id} ({event.type} from {event.source}): {outcome}, "
            f"routed by {result['workflowId']}"
        )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from tflow_workers import worker

    return worker.main(args.rest)


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="tflow",
        description="Temporal Flow: run, check and draw Serverless Workflow documents.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one document now and print its result and task log")
    run.add_argument("file", type=Path, help="a document or WorkflowDefinition manifest")
    run.add_argument("--input", help="the input as JSON, or @file.json")
    run.add_argument("-o", "--output", choices=["table", "json"], default="table")
    run.add_argument(
        "--address",
        default=env("TEMPORAL_ADDRESS"),
        help="Temporal frontend (default $TEMPORAL_ADDRESS, else an ephemeral local dev server)",
    )
    run.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    run.add_argument(
        "--task-queue",
        help="leave the run to the workers of this queue (default: a worker in this process)",
    )
    run.add_argument("--timeout", help="give up after this ISO 8601 duration (e.g. PT5M)")
    run.add_argument(
        "--function",
        action="append",
        default=[],
        help="name=module:callable, a custom function for `call: name`",
    )
    run.add_argument("--definitions-dir", type=Path, help="definitions `run: workflow` uses")
    run.add_argument("--secrets-dir", type=Path, help="secrets as <dir>/<name>/<key> files")
    run.set_defaults(func=cmd_run)

    val = sub.add_parser("validate", help="check documents and WorkflowDefinition manifests")
    val.add_argument("files", type=Path, nargs="+")
    val.add_argument("-o", "--output", choices=["text", "json"], default="text")
    val.add_argument("-v", "--verbose", action="store_true", help="also list skipped objects")
    val.set_defaults(func=cmd_validate)

    conv = sub.add_parser("convert", help="convert a seed format (steps map, node graph) to SW 1.0")
    conv.add_argument("file", type=Path)
    conv.add_argument("--format", choices=["auto", "poc-steps", "node-graph"], default="auto")
    conv.add_argument("--name", help="the document name (default: from the input)")
    conv.add_argument("--namespace", default="default")
    conv.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    conv.set_defaults(func=cmd_convert)

    graph = sub.add_parser("graph", help="draw a document as Mermaid text or an SVG picture")
    graph.add_argument("file", type=Path)
    graph.add_argument("--format", choices=["mermaid", "svg"])
    graph.add_argument("--out", type=Path, help="write here (.svg implies --format svg)")
    graph.set_defaults(func=cmd_graph)

    def server_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--address",
            default=env("TEMPORAL_ADDRESS"),
            help="Temporal frontend (default $TEMPORAL_ADDRESS)",
        )
        p.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))

    runs = sub.add_parser("runs", help="list runs, or show one with its task log")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    rl = runs_sub.add_parser("list", help="the latest runs, newest first")
    rl.add_argument("--definition", help="only runs of this definition (namespace/name)")
    rl.add_argument(
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
    rl.add_argument("--limit", type=int, default=20)
    rl.add_argument("-o", "--output", choices=["table", "json"], default="table")
    server_flags(rl)
    rl.set_defaults(func=cmd_runs_list)
    rs = runs_sub.add_parser("show", help="a run's status, output or error, and task log")
    rs.add_argument("workflow_id")
    rs.add_argument("-o", "--output", choices=["table", "json"], default="table")
    server_flags(rs)
    rs.set_defaults(func=cmd_runs_show)

    sig = sub.add_parser("signal", help="send a signal (an event of that type) to a run")
    sig.add_argument("workflow_id")
    sig.add_argument("name", help="the signal name, e.g. approve")
    sig.add_argument("--input", help="the signal's argument as JSON, or @file.json")
    server_flags(sig)
    sig.set_defaults(func=cmd_signal)

    can = sub.add_parser("cancel", help="request cancellation of a run")
    can.add_argument("workflow_id")
    server_flags(can)
    can.set_defaults(func=cmd_cancel)

    snd = sub.add_parser("send", help="send an event to the router (directly, or to a webhook)")
    snd.add_argument("file", nargs="?", help="a JSON event (CloudEvent or plain), or - for stdin")
    snd.add_argument("--type", help="the event type, when not sending a file")
    snd.add_argument("--source", default="tflow-cli")
    snd.add_argument("--id", help="the event id (default: derived from the content)")
    snd.add_argument("--data", help="the event data as JSON")
    snd.add_argument("--webhook", help="POST to this webhook listener URL instead")
    snd.add_argument("--token", default=env("TFLOW_WEBHOOK_TOKEN"), help="bearer token")
    snd.add_argument(
        "--router-task-queue", default=env("TFLOW_ROUTER_TASK_QUEUE", "root_orchestrator-queue")
    )
    snd.add_argument("-o", "--output", choices=["text", "json"], default="text")
    server_flags(snd)
    snd.set_defaults(func=cmd_send)

    from tflow_cli.ui.command import add_parser as add_ui

    add_ui(sub)

    from tflow_cli.runapi.client import add_parser as add_api
    from tflow_cli.runapi.command import add_parser as add_run_api

    add_run_api(sub)
    add_api(sub)

    wrk = sub.add_parser("worker", help="run a worker (see `tflow worker --help`)", add_help=False)
    wrk.add_argument("rest", nargs=argparse.REMAINDER)
    wrk.set_defaults(func=cmd_worker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except DocumentFileError as err:
        print(f"tflow: {err}", file=sys.stderr)
        return EXIT_USAGE
    return code


def cli() -> None:
    """The console entry point. It leaves without Python's interpreter finalisation: the
    Temporal SDK's native threads can still hold the GIL then, which aborts the process
    now and again after the command itself has succeeded."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()

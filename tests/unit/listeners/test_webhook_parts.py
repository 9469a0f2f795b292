"""The webhook listener's parts on their own: the token bucket, secrets from files, JSON
limits, the command line and its environment variables, the API document."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tflow_devstack.process import free_port
from tflow_listeners.__main__ import SOURCES, build_parser
from tflow_listeners.webhook import (
    MAX_JSON_DEPTH,
    Refusal,
    ReplayCache,
    Secret,
    TokenBucket,
    WebhookListener,
    WebhookSettings,
    hmac_key,
    openapi,
    parse_json,
    settings_from,
)


def test_token_bucket_allows_bursts_then_paces() -> None:
    now = [100.0]
    bucket = TokenBucket(2, clock=lambda: now[0])
    assert bucket.take() == 0
    assert bucket.take() == 0
    assert bucket.take() == pytest.approx(0.5)  # the next token in half a second
    now[0] += 0.5
    assert bucket.take() == 0
    now[0] += 60  # idle time refills only up to the burst
    assert [bucket.take() for _ in range(3)] == [0, 0, pytest.approx(0.5)]
    slow = TokenBucket(0.1, clock=lambda: now[0])
    assert slow.take() == 0
    assert slow.take() == pytest.approx(10)
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


def test_secret_files_are_stripped_and_reread_when_rotated(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("first\n")
    secret = Secret.from_file(path)
    assert secret.value() == b"first"
    path.write_text("second-value")
    os.utime(path, ns=(1, 10**18))  # a distinct mtime, however coarse the clock
    assert secret.value() == b"second-value"
    path.unlink()  # mid-swap: the last value stands
    assert secret.value() == b"second-value"
    with pytest.raises(FileNotFoundError):
        Secret.from_file(tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        Secret.from_file(tmp_path / "empty")
    assert Secret(b"literal").value() == b"literal"


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (b"", "empty-body", "empty"),
        (b"  \n", "empty-body", "empty"),
        (b"{", "malformed-json", "not valid JSON"),
        (b"\xff\xfe{", "malformed-json", "not valid JSON"),
        (b'{"x": Infinity}', "malformed-json", "Infinity is not a JSON number"),
        (b'{"x": 1e999}', "malformed-json", "out of range"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "too-deep", "100 levels"),
        (b"[" * 5000 + b"]" * 5000, "too-deep", "100 levels"),
    ],
)
def test_parse_json_refusals(body: bytes, reason: str, words: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert caught.value.reason == reason
    assert words in caught.value.detail


def test_parse_json_accepts_the_deepest_allowed() -> None:
    depth = MAX_JSON_DEPTH
    assert parse_json(b"[" * depth + b"]" * depth) is not None


def test_cli_flags_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert "webhook" in SOURCES
    (tmp_path / "hmac").write_text("k")
    monkeypatch.setenv("TFLOW_LISTENER_PORT", "9090")
    monkeypatch.setenv("TFLOW_LISTENER_RATE_LIMIT", "2.5")
    monkeypatch.setenv("TFLOW_LISTENER_HMAC_SECRET_FILE", str(tmp_path / "hmac"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal-frontend:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "flows")
    args = build_parser("webhook").parse_args(["webhook", "--max-body-bytes", "2048"])
    assert (args.port, args.rate_limit, args.max_body_bytes) == (9090, 2.5, 2048)
    assert (args.address, args.namespace) == ("temporal-frontend:7233", "flows")
    assert args.task_queue == "root_orchestrator-queue"
    assert args.path == "/events"
    settings = settings_from(args)
    assert settings.hmac_secret is not None
    assert settings.hmac_secret.value() == b"k"
    assert settings.bearer_token is None
    # A flag wins over its variable.
    assert build_parser("webhook").parse_args(["webhook", "--port", "1"]).port == 1
    with pytest.raises(ValueError, match="--rate-limit must be positive"):
        settings_from(build_parser("webhook").parse_args(["webhook", "--rate-limit", "0"]))


def test_cli_needs_a_known_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(None).parse_args(["carrier-pigeon"])
    assert "invalid choice" in capsys.readouterr().err


async def test_the_path_cannot_shadow_a_built_in_route() -> None:
    client = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    for path in ("/healthz", "/webhook/sharepoint", "/runs/x"):
        with pytest.raises(ValueError, match="collides"):
            WebhookListener(client, WebhookSettings(path=path)).app()
    WebhookListener(client, WebhookSettings(path="/hooks/github")).app()


async def test_openapi_document_is_generated_from_the_routes_and_resolves_its_refs() -> None:
    client = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    document = openapi(WebhookListener(client, WebhookSettings(path="/hooks/in")).app())
    assert document["openapi"].startswith("3.")
    assert "/hooks/in" in document["paths"]
    assert "/events" not in document["paths"]
    # Every declared route, with the methods it was declared for.
    assert set(document["paths"]["/hooks/in"]) == {"post", "options"}
    assert set(document["paths"]["/webhook/azure-eventgrid"]) == {"post", "options"}
    assert "post" in document["paths"]["/webhook/sharepoint"]
    assert "get" in document["paths"]["/runs/{workflowId}"]
    signal = document["paths"]["/runs/{workflowId}/signal/{name}"]["post"]
    assert [(p["name"], p["in"]) for p in signal["parameters"]] == [
        ("workflowId", "path"),
        ("name", "path"),
    ]
    assert signal["security"] == [{"bearer": []}]
    assert set(signal["responses"]) == {"202", "401", "403", "404", "409"}
    assert signal["responses"]["409"]["description"] == "The run has closed."
    events = document["paths"]["/hooks/in"]["post"]
    assert {"202", "400", "401", "413", "415", "429", "503"} == set(events["responses"])
    assert events["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Accepted"
    }
    assert "validationToken" in [
        p["name"] for p in document["paths"]["/webhook/sharepoint"]["post"]["parameters"]
    ]
    schemas = document["components"]["schemas"]
    assert {"RunStatus", "TaskLogEntry", "Problem", "Accepted", "RunState"} <= set(schemas)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_cli_hmac_scheme_and_run_control_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "hmac").write_text("whsec_" + base64.b64encode(b"raw key bytes").decode())
    monkeypatch.setenv("TFLOW_LISTENER_HMAC_SECRET_FILE", str(tmp_path / "hmac"))
    monkeypatch.setenv("TFLOW_LISTENER_RUN_CONTROL", "true")
    monkeypatch.setenv("TFLOW_LISTENER_KUBE_NAMESPACE", "team-a")
    settings = settings_from(build_parser("webhook").parse_args(["webhook"]))
    assert (settings.hmac_scheme, settings.hmac_tolerance) == ("standard-webhooks", 300.0)
    assert (settings.run_control, settings.namespace) == (True, "team-a")
    assert settings.hmac_secret is not None
    assert hmac_key(settings.hmac_secret.value()) == b"raw key bytes"

    # Run control on a GitHub signature alone could be replayed forever: refused.
    github = build_parser("webhook").parse_args(["webhook", "--hmac-scheme", "github"])
    with pytest.raises(ValueError, match="GitHub signature alone"):
        settings_from(github)
    monkeypatch.setenv("TFLOW_LISTENER_RUN_CONTROL", "false")
    github = build_parser("webhook").parse_args(["webhook", "--hmac-scheme", "github"])
    assert settings_from(github).hmac_scheme == "github"
    with pytest.raises(ValueError, match="--hmac-tolerance-seconds must be positive"):
        settings_from(
            build_parser("webhook").parse_args(["webhook", "--hmac-tolerance-seconds", "0"])
        )
    (tmp_path / "hmac").write_text("whsec_not base64!")
    with pytest.raises(ValueError, match="not base64"):
        settings_from(build_parser("webhook").parse_args(["webhook"]))


def test_replay_cache_refuses_a_seen_id_and_forgets_it_after_the_window() -> None:
    now = [1000.0]
    cache = ReplayCache(window=300, capacity=10, clock=lambda: now[0])
    assert cache.claim("a", 1000) is None
    assert cache.claim("a", 1000) == "replayed"
    assert cache.claim("a", 1001) == "replayed"  # the id, not the timestamp, is the key
    cache.release("a")  # the request failed on our side: the sender's retry is welcome
    assert cache.claim("a", 1002) is None
    now[0] = 1303.0  # past the window: the timestamp check refuses it by then anyway
    assert cache.claim("b", 1303) is None
    assert len(cache) == 1


def test_a_full_replay_cache_narrows_the_window_instead_of_forgetting() -> None:
    now = [2000.0]
    cache = ReplayCache(window=300, capacity=3, clock=lambda: now[0])
    for i, stamp in enumerate((1900, 1950, 1990)):
        assert cache.claim(f"id-{i}", stamp) is None
    assert cache.claim("id-3", 1995) is None  # id-0 (1900) is dropped to make room
    assert len(cache) == 3
    assert cache.floor == 1900
    # id-0 itself, and anything signed no later than the dropped one, is refused.
    assert cache.claim("id-0", 1900) == "evicted"
    assert cache.claim("new", 1899) == "evicted"
    assert cache.claim("id-1", 1950) == "replayed"

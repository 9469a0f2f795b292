"""The generated CRDs: no drift from the models, structural schemas, names, printer columns;
the samples in manifests/samples/ against the models; and the models' rejections."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jq
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from tflow_operator.api import (
    CATEGORY,
    GROUP,
    VERSION,
    EventRoute,
    EventRouteSpec,
    Listener,
    ListenerSpec,
    WorkflowDefinition,
    WorkflowDefinitionSpec,
    crddocs,
    crdgen,
    crds,
)

REPO = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO / "crds"
DOCS = REPO / "docs" / "crd-reference.md"
SAMPLES = REPO / "manifests" / "samples"

KIND_IDS = [kind.names.kind for kind in crds.KINDS]
RESOURCE_MODELS: dict[str, type[BaseModel]] = {
    "WorkflowDefinition": WorkflowDefinition,
    "EventRoute": EventRoute,
    "Listener": Listener,
}


def _load_crd(kind: crds.Kind) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CRDS_DIR / kind.filename).read_text(encoding="utf-8"))
    return loaded


def _root_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


# --------------------------------------------------------------------------- drift


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_crd_file_matches_models(kind: crds.Kind) -> None:
    path = CRDS_DIR / kind.filename
    rel = path.relative_to(REPO)
    if not path.exists():
        pytest.fail(f"{rel} is missing: run `make crds` ({crds.REGENERATE_COMMAND})")
    if path.read_text(encoding="utf-8") != crds.render_crd(kind):
        problems = crdgen.check(CRDS_DIR, None)
        detail = "\n".join(p for p in problems if p.startswith(str(path)))
        pytest.fail(
            f"{rel} differs from what the API models generate: run `make crds` "
            f"({crds.REGENERATE_COMMAND})\n{detail}"
        )


def test_crd_reference_matches_models() -> None:
    rel = DOCS.relative_to(REPO)
    if not DOCS.exists():
        pytest.fail(f"{rel} is missing: run `make crds` ({crds.REGENERATE_COMMAND})")
    if DOCS.read_text(encoding="utf-8") != crddocs.render_docs():
        pytest.fail(f"{rel} differs from what the API models generate: run `make crds`")


def test_crds_dir_holds_only_generated_crds() -> None:
    expected = {kind.filename for kind in crds.KINDS}
    present = {path.name for path in CRDS_DIR.glob("*.yaml")}
    assert present == expected, f"unexpected or missing files in crds/: {present ^ expected}"


def test_check_names_the_differing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, docs = tmp_path / "crds", tmp_path / "docs" / "ref.md"
    assert crdgen.main(["--out", str(out), "--docs", str(docs)]) == 0
    assert crdgen.main(["--out", str(out), "--docs", str(docs), "--check"]) == 0

    victim = out / crds.KINDS[1].filename
    victim.write_text(victim.read_text().replace("priority", "prio"), encoding="utf-8")
    (out / "temporalflow.dev_gone.yaml").write_text(f"# {crds.GENERATED_HEADER}\n")
    capsys.readouterr()
    assert crdgen.main(["--out", str(out), "--docs", str(docs), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{victim}: differs from the models" in err
    assert "temporalflow.dev_gone.yaml: stale" in err
    assert str(out / crds.KINDS[0].filename) not in err

    docs.unlink()
    assert any(p.startswith(f"{docs}: missing") for p in crdgen.check(out, docs))

    crdgen.main(["--out", str(out), "--docs", str(docs)])
    assert crdgen.check(out, docs) == []
    assert not (out / "temporalflow.dev_gone.yaml").exists()


def test_generated_files_carry_the_header() -> None:
    for name, text in crds.generate_crds().items():
        assert text.startswith(f"# {crds.GENERATED_HEADER}\n"), name
    assert crds.GENERATED_HEADER in crddocs.render_docs().splitlines()[0]


# --------------------------------------------------------------------------- structure


def _walk(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), Mapping):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(key, [])):
            yield from _walk(sub, f"{path}.{key}[{i}]")


FORBIDDEN_KEYWORDS = {"$ref", "$defs", "definitions", "title", "const", "$schema", "uniqueItems"}


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_schema_is_structural(kind: crds.Kind) -> None:
    root = _root_schema(_load_crd(kind))
    problems: list[str] = []
    for path, node in _walk(root, "<root>"):
        if FORBIDDEN_KEYWORDS & node.keys():
            problems.append(f"{path}: has {sorted(FORBIDDEN_KEYWORDS & node.keys())}")
        in_junctor = any(f".{k}[" in path for k in ("anyOf", "oneOf", "allOf"))
        open_node = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        if not in_junctor and "type" not in node and not open_node:
            problems.append(f"{path}: no type")
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                if "type" in sub:
                    problems.append(f"{path}: {key} contains a type")
        if node.get("additionalProperties") is False:
            problems.append(f"{path}: additionalProperties: false")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: both properties and additionalProperties")
        if "default" in node and node["default"] is None:
            problems.append(f"{path}: null default")
        if node.get("type") == "integer" and node.get("format") not in ("int32", "int64"):
            problems.append(f"{path}: integer without int32/int64 format")
        for name in node.get("required", []):
            if name not in node.get("properties", {}):
                problems.append(f"{path}: required {name!r} is not a property")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_top_level_schema(kind: crds.Kind) -> None:
    root = _root_schema(_load_crd(kind))
    assert root["type"] == "object"
    assert root["required"] == ["spec"]
    assert set(root["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["properties"]["spec"]["type"] == "object"
    assert root["properties"]["status"]["type"] == "object"
    assert "conditions" in root["properties"]["status"]["properties"]
    assert "observedGeneration" in root["properties"]["status"]["properties"]


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_every_field_is_described(kind: crds.Kind) -> None:
    root = _root_schema(_load_crd(kind))
    undocumented = [
        path
        for path, node in _walk(root["properties"]["spec"], "spec")
        if not path.endswith("[]") and not node.get("description")
    ]
    undocumented += [
        path
        for path, node in _walk(root["properties"]["status"], "status")
        if not path.endswith("[]") and not node.get("description")
    ]
    assert not undocumented, f"fields without a description: {undocumented}"


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_cel_rules_are_readable(kind: crds.Kind) -> None:
    root = _root_schema(_load_crd(kind))
    for path, node in _walk(root, "<root>"):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("message"), f"{path}: rule {rule['rule']!r} has no message"
            assert "\n" not in rule["message"]
            assert rule.get("reason", "FieldValueInvalid") in {
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
                "FieldValueDuplicate",
            }
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".") in node["properties"], (path, rule)
            for word in ("namespace", "in", "as", "for", "if", "return", "var"):
                assert not re.search(rf"\bself\.{word}\b", rule["rule"]), (path, rule)


EXPECTED_NAMES = {
    "WorkflowDefinition": ("workflowdefinitions", "workflowdefinition", ["wfd"]),
    "EventRoute": ("eventroutes", "eventroute", ["er"]),
    "Listener": ("listeners", "listener", ["lsn"]),
}


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_names_scope_and_subresources(kind: crds.Kind) -> None:
    crd = _load_crd(kind)
    plural, singular, short = EXPECTED_NAMES[kind.names.kind]
    names = crd["spec"]["names"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    assert kind.filename == f"{GROUP}_{plural}.yaml"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert names["kind"] == kind.names.kind
    assert names["listKind"] == f"{kind.names.kind}List"
    assert (names["plural"], names["singular"], names["shortNames"]) == (plural, singular, short)
    assert names["categories"] == [CATEGORY] == ["temporalflow"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == VERSION
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


READY = '.status.conditions[?(@.type=="Ready")].status'
EXPECTED_COLUMNS = {
    "WorkflowDefinition": [
        ("Task Queue", ".spec.taskQueue", "string"),
        ("Schedule", ".spec.schedule.cron[0]", "string"),
        ("Ready", READY, "string"),
        ("Last Run", ".status.lastRun", "date"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ],
    "EventRoute": [
        ("Type", ".spec.match.type", "string"),
        ("Source", ".spec.match.source", "string"),
        ("Workflow", ".spec.workflow", "string"),
        ("Ready", READY, "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ],
    "Listener": [
        ("Type", ".spec.type", "string"),
        ("Routing", ".spec.routing", "string"),
        ("Ready Replicas", ".status.readyReplicas", "integer"),
        ("Endpoint", ".status.endpoint", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ],
}


@pytest.mark.parametrize("kind", crds.KINDS, ids=KIND_IDS)
def test_printer_columns(kind: crds.Kind) -> None:
    (version,) = _load_crd(kind)["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    default = [(c["name"], c["jsonPath"], c["type"]) for c in columns if not c.get("priority")]
    assert default == EXPECTED_COLUMNS[kind.names.kind]
    for column in columns:
        assert column["jsonPath"].startswith(".")
        assert column["type"] in {"string", "integer", "number", "boolean", "date"}
        assert column.get("description")


def test_key_constraints_are_carried_over() -> None:
    wfd = _root_schema(_load_crd(crds.KINDS[0]))["properties"]["spec"]
    workers = wfd["properties"]["workers"]
    assert workers["default"] == {}
    assert workers["properties"]["minReplicas"] == {
        "default": 0,
        "description": workers["properties"]["minReplicas"]["description"],
        "format": "int32",
        "minimum": 0,
        "type": "integer",
    }
    assert wfd["required"] == ["taskQueue", "workflow"]
    assert wfd["properties"]["taskQueue"]["pattern"].startswith("^[a-z0-9]")
    schedule = wfd["properties"]["schedule"]
    assert schedule["properties"]["cron"]["minItems"] == 1
    assert schedule["properties"]["overlap"]["enum"] == [
        "Skip",
        "BufferOne",
        "BufferAll",
        "CancelOther",
        "TerminateOther",
        "AllowAll",
    ]
    assert schedule["properties"]["catchupWindow"]["default"] == "1m"
    assert schedule["properties"]["input"]["x-kubernetes-preserve-unknown-fields"] is True
    workflow = wfd["properties"]["workflow"]
    assert workflow["x-kubernetes-preserve-unknown-fields"] is True
    assert "required" not in workflow  # checked by CEL with a readable message instead
    assert any("has(self.do)" in r["rule"] for r in workflow["x-kubernetes-validations"])

    lsn = _root_schema(_load_crd(crds.KINDS[2]))["properties"]["spec"]
    assert lsn["properties"]["type"]["enum"] == ["webhook", "sqs", "azureServiceBus"]
    sqs = lsn["properties"]["sqs"]["properties"]
    assert (sqs["waitTimeSeconds"]["minimum"], sqs["waitTimeSeconds"]["maximum"]) == (0, 20)
    assert lsn["properties"]["webhook"]["properties"]["maxBodyBytes"]["format"] == "int64"
    messages = {r["message"] for r in lsn["x-kubernetes-validations"]}
    assert "spec.sqs is required when spec.type is sqs" in messages


def test_openapi_schema_rejects_non_structural_models() -> None:
    class Union(BaseModel):
        value: int | str

    with pytest.raises(crds.SchemaError, match=r"Union\.value"):
        crds.openapi_schema(Union)


# --------------------------------------------------------------------------- samples

REQUIRED_SAMPLES = {
    "incident-workflow.yaml",
    "document-processing-workflow.yaml",
    "order-workflow.yaml",
    "nightly-report-workflow.yaml",
    "route.yaml",
    "listener-webhook.yaml",
    "listener-sqs.yaml",
}


def _sample_objects() -> list[tuple[str, dict[str, Any]]]:
    objects: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                objects.append((path.name, doc))
    return objects


SAMPLE_OBJECTS = _sample_objects()
OUR_SAMPLES = [(f, d) for f, d in SAMPLE_OBJECTS if d["apiVersion"].startswith(GROUP + "/")]


def test_required_samples_exist() -> None:
    present = {path.name for path in SAMPLES.glob("*.yaml")}
    assert present >= REQUIRED_SAMPLES, f"missing samples: {REQUIRED_SAMPLES - present}"
    kinds = {d["kind"] for _, d in OUR_SAMPLES}
    assert kinds == set(RESOURCE_MODELS)


@pytest.mark.parametrize(
    ("filename", "obj"),
    SAMPLE_OBJECTS,
    ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in SAMPLE_OBJECTS],
)
def test_sample_is_namespace_less(filename: str, obj: dict[str, Any]) -> None:
    assert "namespace" not in obj["metadata"], f"{filename}: samples are applied with -n"


@pytest.mark.parametrize(
    ("filename", "obj"),
    OUR_SAMPLES,
    ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in OUR_SAMPLES],
)
def test_sample_is_accepted_by_the_models(filename: str, obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == f"{GROUP}/{VERSION}"
    model = RESOURCE_MODELS[obj["kind"]].model_validate(obj)
    dumped = model.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    assert dumped["spec"] == obj["spec"], f"{filename}: the spec does not round-trip"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for sub in value.values():
            yield from _strings(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _strings(sub)


# Runtime expression arguments of Serverless Workflow 1.0, bound so expressions compile.
SW_ARGUMENTS: dict[str, Any] = {
    name: {} for name in ("context", "input", "output", "secrets", "task", "workflow", "runtime")
}
EXPRESSION = re.compile(r"^\s*\$\{(?P<body>[\s\S]*)\}\s*$")


@pytest.mark.parametrize(
    ("filename", "obj"),
    OUR_SAMPLES,
    ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in OUR_SAMPLES],
)
def test_sample_expressions_compile(filename: str, obj: dict[str, Any]) -> None:
    count = 0
    for text in _strings(obj["spec"]):
        found = EXPRESSION.match(text)
        if found is None:
            assert "${" not in text, f"{filename}: expression not alone in its string: {text!r}"
            continue
        count += 1
        try:
            jq.compile(found["body"], args=SW_ARGUMENTS)
        except ValueError as exc:
            pytest.fail(f"{filename}: {text!r} does not compile: {exc}")
    if obj["kind"] == "WorkflowDefinition":
        assert count, f"{filename}: expected jq expressions"


def test_sample_routes_target_sample_workflows() -> None:
    workflows = {d["metadata"]["name"] for _, d in OUR_SAMPLES if d["kind"] == "WorkflowDefinition"}
    routes = [d for _, d in OUR_SAMPLES if d["kind"] == "EventRoute"]
    assert {r["spec"]["workflow"] for r in routes} <= workflows
    pdf = next(r for r in routes if r["spec"]["match"].get("type") == "document-added")
    assert pdf["spec"]["match"]["filter"] == '${ .data.key | endswith(".pdf") }'
    assert pdf["spec"]["workflow"] == "document-processing"
    program = jq.compile(EXPRESSION.match(pdf["spec"]["match"]["filter"])["body"])  # type: ignore[index]
    assert program.input_value({"data": {"key": "uploads/report.pdf"}}).first() is True
    assert program.input_value({"data": {"key": "uploads/photo.png"}}).first() is False
    assert any(r["spec"]["match"] == {"type": "incident"} for r in routes)
    assert any(r["spec"]["match"] == {"source": "monitoring"} for r in routes)


def test_sample_secret_refs_point_at_sample_secrets() -> None:
    secrets = {
        d["metadata"]["name"]: set(d.get("stringData", {}))
        for _, d in SAMPLE_OBJECTS
        if d["kind"] == "Secret"
    }
    for filename, obj in OUR_SAMPLES:
        if obj["kind"] == "WorkflowDefinition":
            workers = WorkflowDefinitionSpec.model_validate(obj["spec"]).workers
            for item in workers.env if workers else []:
                ref = item.value_from.secret_key_ref if item.value_from else None
                if ref is not None:
                    assert ref.key in secrets.get(ref.name, set()), f"{filename}: {ref}"
        if obj["kind"] != "Listener":
            continue
        listener = Listener.model_validate(obj).spec
        refs = []
        if listener.webhook and listener.webhook.auth and listener.webhook.auth.hmac_secret_ref:
            refs.append(listener.webhook.auth.hmac_secret_ref)
        if listener.azure_service_bus:
            refs.append(listener.azure_service_bus.connection_string_secret_ref)
        for ref in refs:
            assert ref.key in secrets.get(ref.name, set()), f"{filename}: {ref}"
        if listener.sqs and listener.sqs.credentials_secret_ref:
            keys = secrets.get(listener.sqs.credentials_secret_ref.name, set())
            assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= keys, filename


# --------------------------------------------------------------------------- rejections


def _sample_spec(name: str) -> dict[str, Any]:
    obj = next(d for _, d in OUR_SAMPLES if d["metadata"]["name"] == name)
    spec: dict[str, Any] = yaml.safe_load(yaml.safe_dump(obj["spec"]))  # a deep copy
    return spec


def _errors(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return str(info.value)


def test_rejects_missing_task_queue() -> None:
    spec = _sample_spec("incident")
    del spec["taskQueue"]
    err = _errors(WorkflowDefinitionSpec, spec)
    assert "taskQueue" in err
    assert "Field required" in err


def test_rejects_wrongly_typed_task_queue() -> None:
    spec = _sample_spec("incident")
    spec["taskQueue"] = 5
    assert "taskQueue" in _errors(WorkflowDefinitionSpec, spec)


@pytest.mark.parametrize("queue", ["Orders", "orders_tq", "-orders", "a" * 64])
def test_rejects_task_queue_that_is_no_dns_label(queue: str) -> None:
    spec = _sample_spec("incident")
    spec["taskQueue"] = queue
    assert "taskQueue" in _errors(WorkflowDefinitionSpec, spec)


def test_rejects_unknown_spec_field() -> None:
    spec = _sample_spec("incident")
    spec["taskqueue"] = "typo"
    err = _errors(WorkflowDefinitionSpec, spec)
    assert "taskqueue" in err
    assert "Extra inputs are not permitted" in err


def test_rejects_min_replicas_above_max() -> None:
    spec = _sample_spec("incident")
    spec["workers"] = {"minReplicas": 5, "maxReplicas": 2}
    err = _errors(WorkflowDefinitionSpec, spec)
    assert "spec.workers.minReplicas must not exceed spec.workers.maxReplicas" in err


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            "set value or valueFrom, not both",
        ),
        (
            {"name": "A", "valueFrom": {}},
            "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
        ),
        (
            {
                "name": "A",
                "valueFrom": {
                    "secretKeyRef": {"name": "s", "key": "k"},
                    "configMapKeyRef": {"name": "c", "key": "k"},
                },
            },
            "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
        ),
    ],
)
def test_rejects_ambiguous_worker_env(item: dict[str, Any], message: str) -> None:
    spec = _sample_spec("incident")
    spec["workers"] = {"env": [item]}
    assert message in _errors(WorkflowDefinitionSpec, spec)


def test_accepts_worker_env_from_secret_and_configmap() -> None:
    spec = _sample_spec("incident")
    spec["workers"] = {
        "env": [
            {"name": "PLAIN", "value": "1"},
            {"name": "DSN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "dsn"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        ]
    }
    parsed = WorkflowDefinitionSpec.model_validate(spec)
    assert parsed.workers is not None
    dsn = parsed.workers.env[1].value_from
    assert dsn is not None
    assert dsn.secret_key_ref is not None
    assert (dsn.secret_key_ref.name, dsn.secret_key_ref.key) == ("db", "dsn")


def test_rejects_workflow_without_do() -> None:
    spec = _sample_spec("incident")
    del spec["workflow"]["do"]
    err = _errors(WorkflowDefinitionSpec, spec)
    assert "workflow.do" in err


def test_rejects_document_of_another_dsl_version() -> None:
    spec = _sample_spec("incident")
    spec["workflow"]["document"]["dsl"] = "0.8"
    assert "spec.workflow.document.dsl must be a 1.0.x version" in _errors(
        WorkflowDefinitionSpec, spec
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("catchupWindow", "one minute"), ("overlap", "Sometimes"), ("cron", [])],
)
def test_rejects_bad_schedule(field: str, value: Any) -> None:
    spec = _sample_spec("nightly-report")
    spec["schedule"][field] = value
    assert f"schedule.{field}" in _errors(WorkflowDefinitionSpec, spec)


def test_rejects_bad_listener_type() -> None:
    spec = _sample_spec("webhook")
    spec["type"] = "kafka"
    err = _errors(ListenerSpec, spec)
    assert "type" in err
    assert "kafka" in err


def test_rejects_wrongly_typed_replicas() -> None:
    spec = _sample_spec("webhook")
    spec["replicas"] = "two"
    assert "replicas" in _errors(ListenerSpec, spec)


def test_rejects_sqs_listener_without_sqs_block() -> None:
    spec = _sample_spec("s3-documents")
    del spec["sqs"]
    assert "spec.sqs is required when spec.type is sqs" in _errors(ListenerSpec, spec)


def test_rejects_block_of_another_type() -> None:
    spec = _sample_spec("webhook")
    spec["sqs"] = {"queueUrl": "https://sqs.example.com/q"}
    assert "spec.sqs is only allowed when spec.type is sqs" in _errors(ListenerSpec, spec)


def test_rejects_scaling_on_a_webhook() -> None:
    spec = _sample_spec("webhook")
    spec["scaling"] = {"maxReplicas": 3}
    assert "spec.scaling applies to queue listeners" in _errors(ListenerSpec, spec)


@pytest.mark.parametrize(
    "entity",
    [{}, {"topic": "t"}, {"queue": "q", "topic": "t", "subscription": "s"}],
)
def test_rejects_service_bus_without_one_entity(entity: dict[str, str]) -> None:
    spec = _sample_spec("azure-blob-events")
    for key in ("queue", "topic", "subscription"):
        spec["azureServiceBus"].pop(key, None)
    spec["azureServiceBus"].update(entity)
    assert "spec.azureServiceBus" in _errors(ListenerSpec, spec)


def test_webhook_block_defaults() -> None:
    spec = ListenerSpec.model_validate({"type": "webhook"})
    assert spec.webhook is None
    assert spec.effective_webhook.path == "/events"
    assert spec.effective_webhook.port == 8080
    assert spec.effective_webhook.max_body_bytes == 1048576


def test_rejects_route_matching_everything() -> None:
    spec = _sample_spec("orders")
    spec["match"] = {}
    assert "spec.match must set at least one of type, source or filter" in _errors(
        EventRouteSpec, spec
    )


@pytest.mark.parametrize("field", ["filter", "input"])
def test_rejects_route_expression_without_braces(field: str) -> None:
    spec = _sample_spec("pdf-documents")
    bad = '.data.key | endswith(".pdf")'
    if field == "filter":
        spec["match"]["filter"] = bad
    else:
        spec["input"] = bad
    assert field in _errors(EventRouteSpec, spec)


def test_rejects_route_to_invalid_workflow_name() -> None:
    spec = _sample_spec("orders")
    spec["workflow"] = "Order Workflow"
    assert "workflow" in _errors(EventRouteSpec, spec)

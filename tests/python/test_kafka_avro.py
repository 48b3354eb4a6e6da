"""Any Kafka tool can read Switchyard's topics: `switchyard serve` runs on a real broker (Tansu,
SWITCHYARD_TEST_KAFKA_BOOTSTRAP, started by scripts/with-tansu.sh in `make test`), serves a chat
completion and a feedback, and every record of its topics is decoded with confluent-kafka and
fastavro alone, using the schema the Confluent frame's id names: from schemas/manifest.json, or
from the schema registry (the local stand-in of Confluent's REST API: no Confluent-compatible
registry installs from the package registries).
"""

import json
import os
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import Gateway
from kafka_avro import SCHEMAS, TOPIC_EVENTS, Schemas, read_topics
from registry_standin import serve as serve_registry

BOOTSTRAP = os.environ.get("SWITCHYARD_TEST_KAFKA_BOOTSTRAP")
MANIFEST_ID_BASE = 0x5359_0000

needs_kafka = pytest.mark.skipif(
    not BOOTSTRAP, reason="needs a Kafka broker: run through scripts/with-tansu.sh (make test)"
)


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {url}: {e.code} {e.read().decode()}") from None


def post(url, body):
    return call("POST", url, body)


def run_traffic(env):
    """Creates a key with `switchyard keys create`, then starts serve on Kafka and sends a chat
    completion, its feedback, a route configuration, a pin and an unpin and a constraints change;
    stops it. Returns the request and decision ids."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD__")}
    full_env.update(env)
    with tempfile.TemporaryDirectory() as data_dir:
        created = subprocess.run(
            [os.environ["SWITCHYARD_BIN"], "--data-dir", data_dir, "keys", "create", "--org", "acme"],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert created.returncode == 0, created.stderr
    gateway = Gateway(env=env)
    try:
        headers, completion = post(
            f"{gateway.url}/v1/chat/completions",
            {"model": "auto", "messages": [{"role": "user", "content": "hello kafka"}]},
        )
        post(f"{gateway.url}/v1/feedback", {"id": completion["id"], "score": 1})
        call(
            "PUT",
            f"{gateway.url}/v1/routes/support",
            {"baseline": "demo/large", "candidates": ["demo/small"], "mode": "shadow"},
        )
        post(f"{gateway.url}/v1/routes/default/pin", {"model": "demo/large", "reason": "incident"})
        call("DELETE", f"{gateway.url}/v1/routes/default/pin")
        call("PUT", f"{gateway.url}/v1/routes/default/constraints", {"max_regression": 0.02})
    finally:
        gateway.stop()
    return completion["id"], headers["x-switchyard-decision-id"]


def kafka_env(prefix, registry=None):
    env = {
        "SWITCHYARD__LOG__URL": f"kafka://{BOOTSTRAP}",
        "SWITCHYARD__LOG__TOPIC_PREFIX": prefix,
        "SWITCHYARD__LOG__KAFKA__GROUP_PREFIX": prefix,
        "SWITCHYARD__LOG__KAFKA__PARTITIONS": "2",
        "SWITCHYARD__LOG__KAFKA__REPLICATION_FACTOR": "1",
        "SWITCHYARD__LOG__KAFKA__TANSU_WORKAROUNDS": "true",
        # As services/gateway/tests/cli/distributed.rs: groups settle in seconds, not 45 s.
        "SWITCHYARD__LOG__KAFKA__SESSION_TIMEOUT_MS": "2000",
        "SWITCHYARD__LOG__KAFKA__HEARTBEAT_INTERVAL_MS": "500",
        "SWITCHYARD__LOG__KAFKA__REQUEST_TIMEOUT_MS": "10000",
    }
    if registry:
        env["SWITCHYARD__SCHEMA_REGISTRY__URL"] = registry
    return env


def check_records(rows, request_id, decision_id):
    assert rows, "no records on the topics"
    for row in rows:
        assert row["full_name"] == f"io.switchyard.events.{row['event']}", row
        assert row["event"] in TOPIC_EVENTS[row["topic"]], row
        envelope = row["record"]["envelope"]
        assert uuid.UUID(envelope["event_id"]).version == 7, row
        assert row["key"] == envelope["partition_key"], row
    by_event = {}
    for row in rows:
        by_event.setdefault(row["event"], []).append(row["record"])
    for event in (
        "RequestReceived",
        "RouteDecided",
        "ResponseCompleted",
        "FeedbackSubmitted",
        "ApiKeyCreated",
        "RouteConfigured",
        "RoutePinned",
        "RouteUnpinned",
        "ConstraintsChanged",
    ):
        assert event in by_event, f"no {event} among {sorted(by_event)}"
    assert [r["request_id"] for r in by_event["RequestReceived"]] == [request_id]
    assert [r["request_id"] for r in by_event["ResponseCompleted"]] == [request_id]
    [decision] = by_event["RouteDecided"]
    assert decision["decision_id"] == decision_id and decision["request_id"] == request_id
    assert decision["signature"], "a decision is signed"
    [feedback] = by_event["FeedbackSubmitted"]
    assert feedback["target"] == {"request_id": request_id}, feedback["target"]
    [key] = by_event["ApiKeyCreated"]
    assert key["envelope"]["org"] == "acme" and len(key["key_hash"]) == 64, key
    assert [r["route"] for r in by_event["RouteConfigured"]] == ["support"]
    [pin] = by_event["RoutePinned"]
    assert pin["model"] == "demo/large" and pin["reason"] == "incident", pin
    [change] = by_event["ConstraintsChanged"]
    assert change["constraints"]["max_regression"] == 0.02 and change["sequence"] == 0, change


@needs_kafka
def test_topics_decode_with_the_manifest_schemas():
    prefix = f"py-{uuid.uuid4().hex[:8]}."
    request_id, decision_id = run_traffic(kafka_env(prefix))
    rows = read_topics(BOOTSTRAP, prefix, Schemas())
    check_records(rows, request_id, decision_id)
    for row in rows:
        assert row["schema_id"] >= MANIFEST_ID_BASE, row


@needs_kafka
def test_topics_decode_with_the_registry_schemas():
    registry = serve_registry()
    url = f"http://127.0.0.1:{registry.server_address[1]}"
    try:
        prefix = f"py-{uuid.uuid4().hex[:8]}."
        request_id, decision_id = run_traffic(kafka_env(prefix, url))
        with urllib.request.urlopen(f"{url}/subjects", timeout=10) as response:
            subjects = json.loads(response.read())
        manifest = json.loads((SCHEMAS / "manifest.json").read_text())
        assert sorted(subjects) == sorted({e["subject"] for e in manifest["schemas"]})
        rows = read_topics(BOOTSTRAP, prefix, Schemas(url))
        check_records(rows, request_id, decision_id)
        for row in rows:
            # Framed with the registry's ids; the writer schema came from GET /schemas/ids/{id}.
            assert row["schema_id"] < MANIFEST_ID_BASE, row
    finally:
        registry.shutdown()


def test_an_unreachable_registry_stops_startup_with_one_line_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD__")}
    env["SWITCHYARD__SCHEMA_REGISTRY__URL"] = url
    with tempfile.TemporaryDirectory() as data_dir:
        done = subprocess.run(
            [os.environ["SWITCHYARD_BIN"], "--data-dir", data_dir, "serve", "--listen", "127.0.0.1:0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: schema registry {url}: cannot register io.switchyard.events.RequestReceived v1: "
    ), done.stderr
    assert "panicked" not in done.stderr

"""The broker outage test of the distributed mode: the Kafka-protocol broker is stopped for 30 s
under load and restarted; ingress keeps answering, and every acknowledged request's events
(RequestReceived, RouteDecided, ResponseCompleted) are on the topics afterwards, each exactly
once after dedupe by event id.

The broker is Tansu (the `make test` broker) on S3 storage served by moto on 127.0.0.1, so that
what it acknowledged survives its restart, as a Kafka cluster's disks would. The topics are read
back by confluent-kafka and fastavro (kafka_avro.py), not by Switchyard's code.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from kafka_avro import Schemas, read_topics

REPO = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout} s")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """Tansu on S3 storage (moto): stop and start keep what it acknowledged."""

    def __init__(self, s3_endpoint: str, log_dir: Path):
        self.tansu = subprocess.run(
            [str(REPO / "scripts" / "ensure-tansu.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.port = free_port()
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        self.log_dir = log_dir
        self.proc = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"tansu-{self.starts}.log", "w")
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(
            [self.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "s3://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        wait_for(lambda: listening(self.port), "tansu to listen", 30)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Role:
    """One `switchyard` role process with its own data directory."""

    def __init__(self, config: Path, *role: str):
        binary = os.environ.get("SWITCHYARD_BIN")
        if not binary:
            raise RuntimeError("SWITCHYARD_BIN is not set: run these tests through `make test`")
        self.data_dir = tempfile.mkdtemp(prefix="switchyard-outage-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD__")}
        self.stderr = open(Path(self.data_dir) / "stderr.log", "w+")
        self.proc = subprocess.Popen(
            [binary, "--config", str(config), "--data-dir", self.data_dir, *role,
             "--listen", "127.0.0.1:0"],
            stderr=self.stderr, stdout=subprocess.DEVNULL, env=env,
        )
        self.url = None

        def listening_line() -> bool:
            text = Path(self.stderr.name).read_text()
            # Complete lines only: the file may be read while the line is half written.
            for line in text.split("\n")[:-1]:
                if line.startswith("switchyard: listening on "):
                    self.url = line.split()[3]
                    return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"{role} exited: {text[-2000:]}")
            return False

        wait_for(listening_line, f"{role} to listen", 60)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name: str) -> float:
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture()
def s3_endpoint():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: listening(port), "moto to listen", 30)
        import boto3

        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        ).create_bucket(Bucket="tansu")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def chat(url: str, i: int) -> str | None:
    """One request; the response id when it was answered 200, else None."""
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": f"q {i}"}]})
    request = urllib.request.Request(
        url + "/v1/chat/completions", data=body.encode(),
        headers={"content-type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())["id"] if r.status == 200 else None
    except (urllib.error.URLError, TimeoutError):
        return None


def test_a_broker_outage_under_load_loses_and_duplicates_nothing(s3_endpoint, tmp_path):
    broker = Broker(s3_endpoint, tmp_path)
    broker.start()
    prefix = f"outage{os.getpid()}."
    config = tmp_path / "kafka.toml"
    config.write_text(
        f"""
[log]
url = "kafka://{broker.bootstrap}"
topic_prefix = "{prefix}"

[log.kafka]
group_prefix = "{prefix}"
partitions = 2
replication_factor = 1
session_timeout_ms = 2000
heartbeat_interval_ms = 500
request_timeout_ms = 5000
tansu_workarounds = true

[gateway]
publish_append_timeout_ms = 1000
"""
    )
    ingress = Role(config, "ingress")
    acknowledged: list[str] = []
    refused = Counter()
    stop = threading.Event()

    def load(worker: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            got = chat(ingress.url, worker * 1_000_000 + i)
            if got is None:
                refused["refused"] += 1
            else:
                acknowledged.append(got)
            time.sleep(0.01)

    try:
        wait_for(lambda: ingress.get("/readyz")[0] == 200, "ingress ready", 60)
        workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for w in workers:
            w.start()
        time.sleep(3)
        before = len(acknowledged)
        broker.stop()
        time.sleep(OUTAGE_SECONDS)
        during = len(acknowledged) - before
        broker.start()
        time.sleep(5)
        stop.set()
        for w in workers:
            w.join()

        # Ingress kept serving through the outage, and the outage was real: events spilled.
        assert refused["refused"] == 0, f"{refused['refused']} requests failed"
        assert during > 100, f"only {during} requests answered during the outage"
        assert ingress.get("/readyz")[0] == 200

        def drained() -> bool:
            return (
                ingress.metric("publish_queue_depth") == 0
                and ingress.metric("publish_unspilled_events")
                == ingress.metric("publish_spilled_events")
            )

        wait_for(drained, "the spill to be re-sent", 120)
        spilled = ingress.metric("publish_spilled_events")
        assert spilled > 0, "nothing spilled: the outage did not reach the publisher"

        records = read_topics(broker.bootstrap, prefix, Schemas())
        by_kind: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        deliveries = Counter()
        for r in records:
            if r["event"] in ("RequestReceived", "RouteDecided", "ResponseCompleted"):
                event_id = r["record"]["envelope"]["event_id"]
                by_kind[r["event"]][r["record"]["request_id"]].add(event_id)
                deliveries[event_id] += 1
        missing = {
            kind: [rid for rid in acknowledged if len(by_kind[kind][rid]) == 0]
            for kind in ("RequestReceived", "RouteDecided", "ResponseCompleted")
        }
        twice = {
            kind: [rid for rid in acknowledged if len(by_kind[kind][rid]) > 1]
            for kind in missing
        }
        assert all(not m for m in missing.values()), {k: (len(v), v[:3]) for k, v in missing.items()}
        assert all(not t for t in twice.values()), {k: (len(v), v[:3]) for k, v in twice.items()}
        redelivered = sum(n - 1 for n in deliveries.values())
        print(
            f"\noutage: {len(acknowledged)} requests acknowledged ({during} during the "
            f"{OUTAGE_SECONDS} s outage), {int(spilled)} events spilled and re-sent, "
            f"{redelivered} duplicate deliveries removed by event id, 0 lost"
        )
    finally:
        stop.set()
        ingress.stop()
        broker.stop()

"""Parquet exports and SQL end to end: chat requests through the real binary with the official
OpenAI SDK, the sink's files read back with DuckDB and compared with `switchyard sql`, org
isolation through POST /v1/sql, and the sink writing to an S3-compatible server (moto) on
127.0.0.1."""

import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import duckdb
import pytest
from openai import OpenAI

from conftest import Gateway

FAST_SINK = {
    "SWITCHYARD__SINK__ROLL_INTERVAL_SECS": "1",
    "SWITCHYARD__SINK__FLUSH_CHECK_MS": "200",
}


def drain(gateway):
    """Keeps reading the server's stderr so its logging never blocks on a full pipe."""
    threading.Thread(target=lambda: [None for _ in gateway.proc.stderr], daemon=True).start()


def switchyard(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD__")}
    full_env.update(env or {})
    done = subprocess.run(
        [os.environ["SWITCHYARD_BIN"], *args], capture_output=True, text=True, env=full_env, timeout=120
    )
    return done


def create_key(data_dir, org, admin):
    args = ["keys", "create", "--org", org, "--data-dir", data_dir] + (["--admin"] if admin else [])
    done = switchyard(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def chat(url, key, n):
    client = OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    for i in range(n):
        reply = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": f"question {i}: what is {i} + {i}?"}]
        )
        assert reply.choices[0].message.content


def sql_json(data_dir, query, env=None):
    done = switchyard("sql", "--data-dir", data_dir, "--format", "json", query, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def post_sql(url, key, query):
    request = urllib.request.Request(
        url + "/v1/sql",
        data=json.dumps({"query": query}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def rounded(rows):
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


@pytest.fixture(scope="module")
def exported():
    gateway = Gateway(env=FAST_SINK)
    drain(gateway)
    try:
        keys = {
            "acme": create_key(gateway.data_dir, "acme", admin=True),
            "globex": create_key(gateway.data_dir, "globex", admin=True),
            "acme-user": create_key(gateway.data_dir, "acme", admin=False),
        }
        chat(gateway.url, keys["acme"], 5)
        chat(gateway.url, keys["acme-user"], 2)
        chat(gateway.url, keys["globex"], 3)
        exports = os.path.join(gateway.data_dir, "exports")

        def landed():
            rows = sql_json(gateway.data_dir, "SELECT org, count(*) AS n FROM decisions GROUP BY org ORDER BY org")
            responses = sql_json(gateway.data_dir, "SELECT count(*) AS n FROM responses")
            return rows == [{"org": "acme", "n": 7}, {"org": "globex", "n": 3}] and responses == [{"n": 10}]

        wait_for(landed, "the sink to write 10 decisions and responses")
        yield gateway, keys, exports
    finally:
        gateway.stop()


def test_duckdb_reads_the_files_and_agrees_with_switchyard_sql(exported):
    gateway, _, exports = exported
    files = sorted(glob.glob(os.path.join(exports, "decisions", "org=*", "date=*", "part-*.parquet")))
    assert files, "no decision files"
    assert {os.path.basename(os.path.dirname(os.path.dirname(f))) for f in files} == {"org=acme", "org=globex"}
    question = (
        "SELECT org, route, chosen_model, served_model, count(*) AS n, avg(confidence) AS confidence, "
        "max(routing_table_version) AS version FROM {decisions} "
        "GROUP BY org, route, chosen_model, served_model ORDER BY org, route, chosen_model, served_model"
    )
    con = duckdb.connect()
    glob_of = lambda table: f"read_parquet('{exports}/{table}/**/*.parquet')"
    cursor = con.execute(question.format(decisions=glob_of("decisions")))
    names = [d[0] for d in cursor.description]
    duck = [dict(zip(names, row)) for row in cursor.fetchall()]
    ours = sql_json(gateway.data_dir, question.format(decisions="decisions"))
    assert rounded(duck) == rounded(ours)
    assert sum(r["n"] for r in ours) == 10

    # Responses joined to decisions: the same answer from both engines.
    join = (
        "SELECT d.org, count(*) AS n, sum(r.total_tokens) AS tokens, sum(r.latency_ms) AS latency "
        "FROM {decisions} d JOIN {responses} r ON d.decision_id = r.decision_id "
        "GROUP BY d.org ORDER BY d.org"
    )
    cursor = con.execute(join.format(decisions=glob_of("decisions"), responses=glob_of("responses")))
    names = [d[0] for d in cursor.description]
    duck = [dict(zip(names, [row[0]] + [int(v) for v in row[1:]])) for row in cursor.fetchall()]
    ours = sql_json(gateway.data_dir, join.format(decisions="decisions", responses="responses"))
    assert duck == ours
    assert [r["n"] for r in ours] == [7, 3]

    # The whole trace is kept as JSON, and it is the decision's.
    trace_rows = con.execute(f"SELECT decision_id, trace_json FROM {glob_of('decisions')}").fetchall()
    for decision_id, trace in trace_rows:
        assert json.loads(trace)["decision_id"] == decision_id

    # CSV and Parquet output of the CLI.
    done = switchyard("sql", "--data-dir", gateway.data_dir, "--format", "csv", "SELECT count(*) AS n FROM requests")
    assert done.returncode == 0 and done.stdout.splitlines() == ["n", "10"], done
    out = os.path.join(tempfile.mkdtemp(), "out.parquet")
    done = switchyard(
        "sql", "--data-dir", gateway.data_dir, "--format", "parquet", "--output", out,
        "SELECT org, count(*) AS n FROM decisions GROUP BY org ORDER BY org",
    )
    assert done.returncode == 0, done.stderr
    assert con.execute(f"SELECT * FROM read_parquet('{out}') ORDER BY org").fetchall() == [("acme", 7), ("globex", 3)]
    done = switchyard("sql", "--data-dir", gateway.data_dir, "SELEC nonsense")
    assert done.returncode != 0 and "SELEC" in done.stderr


def test_post_sql_sees_only_the_keys_org(exported):
    gateway, keys, _ = exported
    every_org = "SELECT count(*) AS n, count(DISTINCT org) AS orgs, min(org) AS org FROM decisions"
    status, body = post_sql(gateway.url, keys["acme"], every_org)
    assert status == 200, body
    assert body["rows"] == [{"n": 7, "orgs": 1, "org": "acme"}]
    status, body = post_sql(gateway.url, keys["globex"], every_org)
    assert status == 200 and body["rows"] == [{"n": 3, "orgs": 1, "org": "globex"}], body
    # Asking for the other org by name finds nothing.
    status, body = post_sql(gateway.url, keys["acme"], "SELECT count(*) AS n FROM decisions WHERE org = 'globex' OR true")
    assert status == 200 and body["rows"] == [{"n": 7}], body
    status, body = post_sql(gateway.url, keys["acme"], "SELECT count(*) AS n FROM requests")
    assert status == 200 and body["rows"] == [{"n": 7}], body

    # Not an admin key: 403; bad SQL: 400 with the engine's message; DDL refused.
    status, body = post_sql(gateway.url, keys["acme-user"], every_org)
    assert status == 403 and body["error"]["code"] == "insufficient_permissions", body
    status, body = post_sql(gateway.url, keys["acme"], "SELECT nope FROM decisions")
    assert status == 400 and body["error"]["code"] == "invalid_sql" and "nope" in body["error"]["message"], body
    status, body = post_sql(gateway.url, keys["acme"], "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/'")
    assert status == 400 and body["error"]["type"] == "invalid_request_error", body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def up():
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    try:
        wait_for(up, "moto to listen", timeout=30)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_sink_writes_to_an_s3_compatible_bucket(moto_server):
    import boto3

    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = boto3.client(
        "s3", endpoint_url=moto_server, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="exports")
    env = {
        **FAST_SINK,
        **credentials,
        "SWITCHYARD__SINK__URL": "s3://exports/switchyard",
        "SWITCHYARD__SINK__S3_ENDPOINT": moto_server,
        "SWITCHYARD__SINK__S3_ALLOW_HTTP": "true",
    }
    gateway = Gateway(env=env)
    drain(gateway)
    try:
        chat(gateway.url, "unused", 4)

        def objects():
            listed = s3.list_objects_v2(Bucket="exports", Prefix="switchyard/decisions/")
            return [o["Key"] for o in listed.get("Contents", [])]

        keys = wait_for(objects, "decision files in the bucket")
        assert all(k.startswith("switchyard/decisions/org=default/date=") and k.endswith(".parquet") for k in keys), keys
        local = tempfile.mkdtemp()
        for i, key in enumerate(keys):
            s3.download_file("exports", key, os.path.join(local, f"{i}.parquet"))
        rows = duckdb.connect().execute(
            f"SELECT count(*), count(DISTINCT decision_id) FROM read_parquet('{local}/*.parquet')"
        ).fetchall()
        assert rows == [(4, 4)]
        manifest = s3.list_objects_v2(Bucket="exports", Prefix="switchyard/_manifest/decisions/")
        assert len(manifest.get("Contents", [])) == len(keys)
        # `switchyard sql` reads the same bucket.
        assert sql_json(gateway.data_dir, "SELECT count(*) AS n FROM decisions", env=env) == [{"n": 4}]
    finally:
        gateway.stop()

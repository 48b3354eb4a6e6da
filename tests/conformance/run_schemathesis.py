"""Runs schemathesis with OpenAI's official spec against the switchyard binary (SWITCHYARD_BIN):
createChatCompletion, listModels and createEmbedding, bounded in time and examples.

Checks: no 5xx on any input, responses conform to the spec's schemas (for documented
statuses), content types match. OpenAI's spec documents no 4xx statuses, while OpenAI itself
answers 400/401/404 with its error object, so `status_code_conformance` is not checked; our
4xx bodies are checked by the SDK and HTTP suites instead."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from conftest import Gateway  # noqa: E402

SPEC = os.environ.get("OPENAI_SPEC", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "specs", "openai", "openapi.yaml"))


def main() -> int:
    spec = os.path.abspath(SPEC)
    if not os.path.exists(spec):
        print(f"schemathesis: the OpenAI spec is not at {spec} (set OPENAI_SPEC)", file=sys.stderr)
        return 2
    gateway = Gateway()
    try:
        env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
        cmd = [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "run",
            spec,
            "--url", gateway.url + "/v1",
            "--include-operation-id", "createChatCompletion",
            "--include-operation-id", "listModels",
            "--include-operation-id", "createEmbedding",
            "--checks", "not_a_server_error,content_type_conformance,response_schema_conformance",
            "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "40"),
            "--max-time", os.environ.get("SCHEMATHESIS_SECONDS", "90"),
            "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261124"),
            "--warnings", "off",
        ]
        code = subprocess.call(cmd, env=env)
        # Prove the run exercised successful completions too (the hooks aim half the requests at
        # served models): every served chat request publishes three events.
        import urllib.request

        metrics = urllib.request.urlopen(gateway.url + "/metrics", timeout=10).read().decode()
        appended = sum(
            float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("publish_appended_events ")
        )
        print(f"schemathesis: the gateway published {int(appended)} events during the run")
        if appended == 0:
            print("schemathesis: no request succeeded; the hooks did not reach a served model", file=sys.stderr)
            return code or 1
        return code
    finally:
        gateway.stop()


if __name__ == "__main__":
    sys.exit(main())

"""A local stand-in for the Confluent Schema Registry REST API (the routes Switchyard uses).

No Confluent-compatible schema registry installs from the package registries this project can
use (crates.io, PyPI, Debian, npm), so the registry path is tested against this stand-in. It
follows Confluent's documented behaviour for the routes below, standard library only:

- ids are global: an identical schema (same parsed JSON) gets the same id under any subject,
  and registering it again answers the id it already has; new schemas get the next id (from 1);
- every answer is `application/vnd.schemaregistry.v1+json`; every error is
  `{"error_code": N, "message": "..."}` with Confluent's codes (40401 subject not found, 40402
  version not found, 40403 schema not found, 42201 invalid schema, 404 unknown route);
- `?deleted=true` and other query parameters are accepted and ignored; subjects may be
  percent-encoded.

Not implemented: compatibility checks (every valid schema is accepted), deletes, modes, config,
contexts, references. Run: `python3 registry_standin.py [--port N]`; it prints
`listening on http://127.0.0.1:PORT` once it accepts connections.

Routes:
    POST /subjects/{subject}/versions        {"schema": "...", "schemaType"?: "AVRO"} -> {"id": N}
    GET  /schemas/ids/{id}                   -> {"schema": "..."}
    GET  /subjects                           -> ["subject", ...]
    GET  /subjects/{subject}/versions        -> [1, 2, ...]
    GET  /subjects/{subject}/versions/{v}    -> {"subject", "version", "id", "schema"} (v may be "latest")
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Store:
    """Schemas by global id and subjects' version lists; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.schemas: list[str] = []  # id - 1 -> schema text as first registered
        self.by_canonical: dict[str, int] = {}
        self.subjects: dict[str, list[int]] = {}  # subject -> ids, version = index + 1

    def register(self, subject: str, schema: str) -> int:
        canonical = json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))
        with self.lock:
            schema_id = self.by_canonical.get(canonical)
            if schema_id is None:
                self.schemas.append(schema)
                schema_id = len(self.schemas)
                self.by_canonical[canonical] = schema_id
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id


class Handler(BaseHTTPRequestHandler):
    server_version = "registry-standin/1"
    store: Store  # set on the class by serve()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, code: int, message: str) -> None:
        self.reply(status, {"error_code": code, "message": message})

    def parts(self) -> list[str]:
        path = urlsplit(self.path).path
        return [unquote(p) for p in path.strip("/").split("/") if p]

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        parts = self.parts()
        store = self.store
        with store.lock:
            if len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
                try:
                    schema_id = int(parts[2])
                except ValueError:
                    return self.error(404, 40403, f"Schema {parts[2]} not found")
                if not 1 <= schema_id <= len(store.schemas):
                    return self.error(404, 40403, f"Schema {schema_id} not found")
                return self.reply(200, {"schema": store.schemas[schema_id - 1]})
            if parts == ["subjects"]:
                return self.reply(200, sorted(store.subjects))
            if len(parts) in (3, 4) and parts[0] == "subjects" and parts[2] == "versions":
                subject = parts[1]
                versions = store.subjects.get(subject)
                if versions is None:
                    return self.error(404, 40401, f"Subject '{subject}' not found.")
                if len(parts) == 3:
                    return self.reply(200, list(range(1, len(versions) + 1)))
                wanted = parts[3]
                index = len(versions) if wanted == "latest" else (int(wanted) if wanted.isdigit() else 0)
                if not 1 <= index <= len(versions):
                    return self.error(404, 40402, f"Version {wanted} not found.")
                schema_id = versions[index - 1]
                return self.reply(
                    200,
                    {
                        "subject": subject,
                        "version": index,
                        "id": schema_id,
                        "schema": store.schemas[schema_id - 1],
                    },
                )
        return self.error(404, 404, "HTTP 404 Not Found")

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        parts = self.parts()
        if not (len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions"):
            return self.error(404, 404, "HTTP 404 Not Found")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            schema = body["schema"]
            if body.get("schemaType", "AVRO") != "AVRO":
                return self.error(422, 42201, f"Unsupported schema type {body['schemaType']}")
            if not isinstance(schema, str):
                raise ValueError("schema must be a string")
            parsed = json.loads(schema)
            if not isinstance(parsed, (dict, list, str)):
                raise ValueError("not an Avro schema")
        except (ValueError, KeyError, TypeError) as e:
            return self.error(422, 42201, f"Invalid schema: {e}")
        return self.reply(200, {"id": self.store.register(parts[1], schema)})


def serve(port: int = 0) -> ThreadingHTTPServer:
    """Returns a started server (in a daemon thread) on 127.0.0.1; `server_address[1]` is its port."""
    handler = type("BoundHandler", (Handler,), {"store": Store()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = serve(args.port)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()

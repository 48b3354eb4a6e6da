"""Reads Switchyard's Kafka topics as any third-party tool would: confluent-kafka and fastavro.

Nothing here comes from Switchyard's code: a record's value is Confluent-framed Avro (byte 0 is
0, bytes 1..5 the big-endian schema id, then the Avro body), and the writer schema is the one
the id names: in `schemas/manifest.json` (no registry), or `GET /schemas/ids/{id}` of the schema
registry. Usable as a module (`read_topics`) or a script that prints one JSON line per record:

    python3 kafka_avro.py BOOTSTRAP TOPIC_PREFIX [--registry URL]
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import urllib.request
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

# schemas/README.md: which events each topic carries.
TOPIC_EVENTS = {
    "requests": {"RequestReceived"},
    "responses": {"ResponseCompleted"},
    "decisions": {"RouteDecided"},
    "feedback": {"FeedbackSubmitted"},
    "judge-scores": {"JudgeScored"},
    "pins": {"RoutePinned", "RouteUnpinned"},
    "constraints": {"ConstraintsChanged"},
    "control": {"ApiKeyCreated", "ApiKeyRevoked", "RouteConfigured"},
    "routing-table": {"RoutingTableUpdated"},
}


class Schemas:
    """Writer schemas by id: the manifest's, or a registry's (fetched once per id)."""

    def __init__(self, registry: str | None = None):
        self.registry = registry.rstrip("/") if registry else None
        self.cache: dict[int, dict] = {}
        manifest = json.loads((SCHEMAS / "manifest.json").read_text())
        self.manifest = {e["id"]: SCHEMAS / e["file"] for e in manifest["schemas"]}

    def text(self, schema_id: int) -> str:
        if self.registry:
            url = f"{self.registry}/schemas/ids/{schema_id}"
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())["schema"]
        if schema_id not in self.manifest:
            raise KeyError(f"schema id {schema_id} is not in schemas/manifest.json")
        return self.manifest[schema_id].read_text()

    def get(self, schema_id: int) -> dict:
        if schema_id not in self.cache:
            self.cache[schema_id] = fastavro.parse_schema(json.loads(self.text(schema_id)))
        return self.cache[schema_id]


def decode(value: bytes, schemas: Schemas) -> tuple[int, str, dict]:
    """Returns (schema id, record full name, record) of one framed value; raises if malformed."""
    if len(value) < 5 or value[0] != 0:
        raise ValueError(f"not Confluent-framed: {value[:5].hex()}")
    (schema_id,) = struct.unpack(">I", value[1:5])
    schema = schemas.get(schema_id)
    body = io.BytesIO(value[5:])
    record = fastavro.schemaless_reader(body, schema, None)
    if body.tell() != len(value) - 5:
        raise ValueError(f"{len(value) - 5 - body.tell()} bytes left after the Avro datum")
    return schema_id, schema["name"], record


def read_topics(bootstrap: str, prefix: str, schemas: Schemas, timeout: float = 30.0) -> list[dict]:
    """Every record of every `prefix + topic`, from the start to the high watermark, decoded."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "third-party-reader",  # never joined: partitions are assigned by hand
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        out = []
        for name in TOPIC_EVENTS:
            topic = prefix + name
            if topic not in metadata.topics:
                continue
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                offset = low
                # Up to the high watermark, then on until the partition is quiet: Tansu 0.6
                # reports the base offset of its last record batch + 1 as the high watermark,
                # so the rest of that batch lies beyond it.
                while True:
                    message = consumer.poll(timeout if offset < high else 1.0)
                    if message is None:
                        if offset < high:
                            raise TimeoutError(
                                f"{topic}[{partition}]: nothing at offset {offset} of {high}"
                            )
                        break
                    if message.error():
                        if message.error().code() == KafkaError._PARTITION_EOF:
                            break
                        raise RuntimeError(f"{topic}[{partition}]: {message.error()}")
                    schema_id, full_name, record = decode(message.value(), schemas)
                    out.append(
                        {
                            "topic": name,
                            "partition": partition,
                            "offset": message.offset(),
                            "key": (message.key() or b"").decode(),
                            "schema_id": schema_id,
                            "event": full_name.rsplit(".", 1)[-1],
                            "full_name": full_name,
                            "record": record,
                        }
                    )
                    offset = message.offset() + 1
                consumer.unassign()
        return out
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("prefix")
    parser.add_argument("--registry")
    args = parser.parse_args()
    for row in read_topics(args.bootstrap, args.prefix, Schemas(args.registry)):
        print(json.dumps(row, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

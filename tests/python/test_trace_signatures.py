"""Decision traces verify with an independent implementation: Python's `cryptography` Ed25519,
`hashlib` SHA-256 and the RFC 9162 inclusion-proof algorithm, following schemas/README.md
("The decision signature") and docs/routing.md ("Verifying a trace") only, no Switchyard code.
Both signing payloads: v2 (binary, what the gateway signs new traces with) and v1 (canonical
JSON), on traces signed before v2 existed (schemas/samples/route_decided/signed-payload-v1.json).

Traces are signed in batches by the publisher; concurrent requests put several traces in one
batch, so multi-leaf proofs are exercised too (the Rust tests cover every tree size)."""

import base64
import concurrent.futures
import copy
import hashlib
import json
import pathlib
import struct
import time
import urllib.request

import openai
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The batch context names the payload format the leaves hash: b"switchyard decision batch v1\0".
BATCH_CONTEXTS = {1: b"switchyard decision batch v1\x00", 2: b"switchyard decision batch v2\x00"}

SIGNED_V1 = pathlib.Path(__file__).resolve().parents[2] / "schemas/samples/route_decided/signed-payload-v1.json"

# Top-level members left out of the payload when they hold their schema default.
SIGNING_DEFAULTS = {
    "features": {
        "input_tokens": 0,
        "max_output_tokens": 0,
        "tools": False,
        "json_schema": False,
        "vision": False,
        "stream": False,
    },
    "score_weights": {"success": 0.4, "feedback": 0.4, "cost": 0.2},
    "constraints_hash": "",
    "route_version": 0,
    "mirrored": False,
}


def es_number(x):
    """ECMAScript Number::toString, as RFC 8785 (JCS) requires."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("JCS has no NaN or infinity")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mant, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    e10 = int(exp or 0) - len(frac)
    stripped = digits.rstrip("0")
    e10 += len(digits) - len(stripped)
    s, k = stripped, len(stripped)
    n = k + e10
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        out = s[0] + ("." + s[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return sign + out


def jcs(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return es_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(value[k]) for k in keys) + "}"


def prune(value):
    """Removes null, [] and {} members at any depth (array elements that prune away become null)."""
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        return [prune(v) for v in value]
    if isinstance(value, dict):
        out = {k: p for k, p in ((k, prune(v)) for k, v in value.items()) if p is not None}
        return out or None
    return value


def binary(value):
    """Signing payload v2's encoding of a JSON value: one tag byte, then the content."""
    if value is None:
        return b"\x00"
    if value is False:
        return b"\x01"
    if value is True:
        return b"\x02"
    if isinstance(value, int):
        return b"\x03" + value.to_bytes(8, "big", signed=True)
    if isinstance(value, float):
        return b"\x04" + struct.pack(">d", value)
    if isinstance(value, str):
        b = value.encode("utf-8")
        return b"\x05" + len(b).to_bytes(4, "big") + b
    if isinstance(value, list):
        return b"\x06" + len(value).to_bytes(4, "big") + b"".join(binary(v) for v in value)
    out = [b"\x07", len(value).to_bytes(4, "big")]
    for k in sorted(value, key=lambda k: k.encode("utf-8")):
        kb = k.encode("utf-8")
        out += [len(kb).to_bytes(4, "big"), kb, binary(value[k])]
    return b"".join(out)


def signed_members(trace):
    """The trace without signature, signature_proof and top-level defaults, pruned."""
    t = copy.deepcopy(trace)
    t.pop("signature", None)
    t.pop("signature_proof", None)
    for field, default in SIGNING_DEFAULTS.items():
        if field in t and t[field] == default:
            del t[field]
    return prune(t) or {}


def canonical_payload(trace, payload_format=1):
    members = signed_members(trace)
    if payload_format == 1:
        return jcs(members).encode("utf-8")
    if payload_format == 2:
        return binary(members)
    raise ValueError(f"unknown signing payload format {payload_format}")


def root_from_proof(index, size, leaf, path):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise ValueError("leaf index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in map(bytes.fromhex, path):
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def verify(key, trace):
    proof = trace.get("signature_proof")
    if proof is None:  # schema v1/v2: the v1 payload itself
        message = canonical_payload(trace, 1)
    else:
        fmt = proof.get("payload_format", 1)
        if fmt not in BATCH_CONTEXTS:
            raise ValueError(f"unknown signing payload format {fmt}")
        leaf = hashlib.sha256(b"\x00" + canonical_payload(trace, fmt)).digest()
        root = root_from_proof(proof["leaf_index"], proof["tree_size"], leaf, proof["path"])
        message = BATCH_CONTEXTS[fmt] + proof["tree_size"].to_bytes(8, "big") + root
    key.verify(base64.b64decode(trace["signature"]), message)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def fetch_trace(gateway, decision_id, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            return get_json(f"{gateway.url}/v1/decisions/{decision_id}")["decision"]
        except urllib.error.HTTPError as e:
            if e.code != 404 or time.time() > deadline:
                raise
            time.sleep(0.1)


def test_es_number_matches_ecmascript():
    cases = {
        1.0: "1",
        0.5: "0.5",
        1e21: "1e+21",
        1e20: "100000000000000000000",
        1e-6: "0.000001",
        1e-7: "1e-7",
        0.00001: "0.00001",
        123.456: "123.456",
        -2.5e-9: "-2.5e-9",
        4.35: "4.35",
        0.1 + 0.2: "0.30000000000000004",
    }
    for x, want in cases.items():
        assert es_number(x) == want, x


def test_traces_verify_with_an_independent_implementation(gateway):
    jwks = get_json(gateway.url + "/v1/keys")["keys"]
    keys = {k["kid"]: Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["x"] + "==")) for k in jwks}
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)

    def one(i):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"question {i}: " + "words " * (i % 7)}]
        )
        return raw.headers["x-switchyard-decision-id"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(one, range(48)))
    traces = [fetch_trace(gateway, d) for d in ids]
    sizes = []
    for trace in traces:
        proof = trace["signature_proof"]
        assert proof is not None, "the publisher signs every trace with a batch proof"
        assert proof["payload_format"] == 2, "new traces are signed over payload v2"
        sizes.append(proof["tree_size"])
        verify(keys[trace["signing_key_id"]], trace)

        # The format is signed too: the same trace read as v1 fails.
        as_v1 = copy.deepcopy(trace)
        as_v1["signature_proof"]["payload_format"] = 1
        with pytest.raises(InvalidSignature):
            verify(keys[trace["signing_key_id"]], as_v1)

        # Any change to the trace, or to its proof, fails.
        changed = copy.deepcopy(trace)
        changed["served_model"] = "demo/forged"
        with pytest.raises(InvalidSignature):
            verify(keys[trace["signing_key_id"]], changed)
        if proof["tree_size"] > 1:
            moved = copy.deepcopy(trace)
            moved["signature_proof"]["leaf_index"] = (proof["leaf_index"] + 1) % proof["tree_size"]
            with pytest.raises((InvalidSignature, ValueError)):
                verify(keys[trace["signing_key_id"]], moved)
    print("batch sizes seen:", sorted(set(sizes)))


def test_a_dry_run_trace_verifies(gateway):
    jwk = get_json(gateway.url + "/v1/keys")["keys"][0]
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    req = urllib.request.Request(
        gateway.url + "/v1/routing/explain",
        data=json.dumps({"model": "auto", "messages": [{"role": "user", "content": "explain me"}]}).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer unused"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        trace = json.load(r)["decision"]
    assert trace["signature_proof"]["tree_size"] == 1
    assert trace["signature_proof"]["payload_format"] == 2
    verify(key, trace)


def test_traces_signed_over_payload_v1_still_verify():
    """v1-v4 traces signed by the code before payload v2 (v1/v2 without a proof, v3/v4 in a
    batch of three and one of one, proofs without payload_format) verify; changed, they fail."""
    doc = json.loads(SIGNED_V1.read_text())
    jwk = doc["keys"][0]
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    traces = doc["traces"]
    assert len(traces) == 6
    assert sum(t.get("signature_proof") is None for t in traces) == 2
    for trace in traces:
        assert "payload_format" not in (trace.get("signature_proof") or {})
        verify(key, trace)
        changed = copy.deepcopy(trace)
        changed["seed"] += 1
        with pytest.raises(InvalidSignature):
            verify(key, changed)
        if trace.get("signature_proof") is not None:
            as_v2 = copy.deepcopy(trace)
            as_v2["signature_proof"]["payload_format"] = 2
            with pytest.raises(InvalidSignature):
                verify(key, as_v2)


def test_binary_payload_types_numbers_by_their_json_form():
    """json.loads gives an int for 3 and a float for 3.0 or 3e0: the trace's JSON writes every
    float member with a '.' or an exponent, and v2 encodes the two differently."""
    assert binary(json.loads("3")) == b"\x03" + (3).to_bytes(8, "big")
    assert binary(json.loads("3.0")) == b"\x04" + struct.pack(">d", 3.0)
    assert binary(json.loads("-0.0")) == b"\x04\x80" + bytes(7)
    assert binary(json.loads('{"b":1,"a":[true,null,"é"]}')) == (
        b"\x07\x00\x00\x00\x02"
        + b"\x00\x00\x00\x01a" + b"\x06\x00\x00\x00\x03\x02\x00\x05\x00\x00\x00\x02\xc3\xa9"
        + b"\x00\x00\x00\x01b" + b"\x03" + (1).to_bytes(8, "big")
    )

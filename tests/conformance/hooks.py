"""Schemathesis hooks: aim half of the generated chat and embedding requests at models this
gateway serves, keeping the generated optional fields, so the fuzzer exercises successful
responses (checked against the spec's response schemas) as well as rejections.

Two things the spec cannot check and the SDK suites cover instead: base64 embeddings (the spec
types `embedding` as floats only, though OpenAI returns a base64 string when asked, as we do)
and streams (the spec gives the chunk schema as the `text/event-stream` schema, so a checker
validates each SSE envelope against it, which OpenAI's own streams fail the same way), and tool
calls (the spec's discriminator on `tool_calls[].type` has no mapping, so the value "function"
that OpenAI itself returns is reported as unknown)."""

import random

import schemathesis

CHAT_MODELS = ["auto", "demo/small", "demo/medium", "demo/large"]
CHAT_FIELDS = ["temperature", "top_p", "stop", "response_format", "seed", "user", "metadata", "logprobs"]


@schemathesis.hook
def map_body(ctx, body):
    if not isinstance(body, dict) or random.random() < 0.5:
        return body
    path = ctx.operation.path
    if path.endswith("/embeddings"):
        return {"model": "demo/embedding", "input": body.get("input") if isinstance(body.get("input"), str) and body.get("input") else "text", "encoding_format": "float"}
    if path.endswith("/chat/completions"):
        sane = {"model": random.choice(CHAT_MODELS), "messages": [{"role": "user", "content": "fuzz"}]}
        for key in CHAT_FIELDS:
            if key in body and random.random() < 0.5:
                sane[key] = body[key]
        return sane
    return body

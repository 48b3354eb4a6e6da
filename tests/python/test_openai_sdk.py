"""The official `openai` Python SDK against Switchyard (demo provider, no keys)."""

import json

import openai
import pytest
from pydantic import BaseModel

from conftest import Gateway


@pytest.fixture()
def client(gateway):
    # The SDK requires some key; with auth.required = false (the single-node default) a key that
    # is not a Switchyard key is served as org `default`.
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def test_chat_completion_and_request_id(client):
    completion = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}])
    assert completion.object == "chat.completion"
    assert completion.model == "demo/large"
    assert completion.id.startswith("chatcmpl-")
    assert completion._request_id == completion.id
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "simulated" in choice.message.content
    assert choice.message.refusal is None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_with_raw_response_exposes_switchyard_headers(client):
    raw = client.chat.completions.with_raw_response.create(model="demo/small", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-switchyard-decision-id"].startswith("dec-")
    assert raw.parse().model == "demo/small"


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_with_and_without_usage(client, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(
        model="demo/medium", messages=[{"role": "user", "content": "stream please"}], stream=True, **kwargs
    )
    text, finish, usage_chunks = "", None, 0
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage_chunks += 1
            assert chunk.choices == []
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert "simulated" in text
    assert finish == "stop"
    assert usage_chunks == (1 if include_usage else 0)


def test_streamed_tool_calls(client):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    stream = client.chat.completions.create(
        model="demo/small",
        messages=[{"role": "user", "content": "weather in Lisbon?"}],
        tools=tools,
        tool_choice="required",
        stream=True,
    )
    name, args, finish = "", "", None
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == {"city": "simulated"}
    assert finish == "tool_calls"


def test_json_schema_structured_output(client):
    class Person(BaseModel):
        name: str
        age: int

    completion = client.chat.completions.parse(
        model="demo/small", messages=[{"role": "user", "content": "a person"}], response_format=Person
    )
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert person.name == "simulated"


def test_embeddings_base64_default_and_float(client):
    default = client.embeddings.create(model="demo/embedding", input=["alpha", "beta"])
    floats = client.embeddings.create(model="demo/embedding", input=["alpha", "beta"], encoding_format="float")
    assert len(default.data) == 2
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert len(floats.data[0].embedding) == 256


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert "auto" in ids and "demo/large" in ids
    assert client.models.retrieve("demo/large").id == "demo/large"


def test_errors_map_to_sdk_exceptions(client, gateway):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope/model", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[])
    assert e.value.param == "messages"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    bad_key = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-sy-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])


def test_an_org_past_its_daily_budget_gets_insufficient_quota_and_the_sdk_does_not_retry():
    # demo/large costs ~$0.0026 a request: the first request spends the whole $0.001 budget.
    g = Gateway(env={"SWITCHYARD__ORGS__DEFAULT__DAILY_BUDGET_USD": "0.001"})
    try:
        sent = []
        http = openai.DefaultHttpxClient(event_hooks={"request": [lambda r: sent.append(r.url.path)]})
        # Default retries (2): the SDK would retry a plain 429 twice.
        client = openai.OpenAI(base_url=g.url + "/v1", api_key="unused", http_client=http)
        client.chat.completions.create(model="demo/large", messages=[{"role": "user", "content": "hi"}])
        refused = None
        for _ in range(5):
            sent.clear()
            try:
                client.chat.completions.create(
                    model="demo/large", messages=[{"role": "user", "content": "again"}]
                )
            except openai.RateLimitError as e:
                refused = e
                break
        assert refused is not None, "the budget was never enforced"
        assert refused.code == "insufficient_quota"
        assert refused.type == "insufficient_quota"
        assert refused.response.headers["x-should-retry"] == "false"
        assert "daily budget" in refused.message
        assert sent == ["/v1/chat/completions"], f"the SDK retried: {sent}"
    finally:
        g.stop()

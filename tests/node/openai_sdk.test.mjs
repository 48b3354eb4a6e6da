// The official `openai` Node SDK against the switchyard binary (SWITCHYARD_BIN), demo provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';

let proc;
let client;
let baseURL;

/// Starts the binary with a fresh data dir; resolves to [process, base URL].
async function startGateway(extraEnv = {}) {
  const bin = process.env.SWITCHYARD_BIN;
  assert.ok(bin, 'SWITCHYARD_BIN is not set: run these tests through `make test`');
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-node-'));
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWITCHYARD__'))),
    ...extraEnv,
  };
  const child = spawn(bin, ['--data-dir', dataDir, 'serve', '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = createInterface({ input: child.stderr });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('switchyard did not report its address')), 60000);
    lines.on('line', (line) => {
      const m = line.match(/^switchyard: listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return [child, url];
}

before(async () => {
  [proc, baseURL] = await startGateway();
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(() => {
  proc?.kill('SIGTERM');
});

test('chat completion with request id', async () => {
  const { data: completion, response, request_id } = await client.chat.completions
    .create({ model: 'auto', messages: [{ role: 'user', content: 'hello' }] })
    .withResponse();
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, 'demo/large');
  assert.equal(request_id, completion.id);
  assert.match(response.headers.get('x-switchyard-decision-id'), /^dec-/);
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.choices[0].message.refusal, null);
  assert.match(completion.choices[0].message.content, /simulated/);
});

for (const includeUsage of [false, true]) {
  test(`streaming (include_usage=${includeUsage})`, async () => {
    const stream = await client.chat.completions.create({
      model: 'demo/medium',
      messages: [{ role: 'user', content: 'stream' }],
      stream: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    });
    let text = '';
    let usageChunks = 0;
    let finish = null;
    for await (const chunk of stream) {
      if (chunk.usage) usageChunks += 1;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.match(text, /simulated/);
    assert.equal(finish, 'stop');
    assert.equal(usageChunks, includeUsage ? 1 : 0);
  });
}

test('streamed tool calls', async () => {
  const stream = await client.chat.completions.create({
    model: 'demo/small',
    messages: [{ role: 'user', content: 'weather?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    tool_choice: 'required',
    stream: true,
  });
  let name = '';
  let args = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      for (const tc of c.delta.tool_calls ?? []) {
        name += tc.function?.name ?? '';
        args += tc.function?.arguments ?? '';
      }
      finish = c.finish_reason ?? finish;
    }
  }
  assert.equal(name, 'get_weather');
  assert.deepEqual(JSON.parse(args), { city: 'simulated' });
  assert.equal(finish, 'tool_calls');
});

test('json_schema output', async () => {
  const completion = await client.chat.completions.create({
    model: 'demo/small',
    messages: [{ role: 'user', content: 'a person' }],
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'person', strict: true, schema: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false } },
    },
  });
  assert.deepEqual(JSON.parse(completion.choices[0].message.content), { name: 'simulated', age: 0 });
});

test('embeddings in base64 (the default) and float agree', async () => {
  const b64 = await client.embeddings.create({ model: 'demo/embedding', input: ['alpha', 'beta'] });
  const floats = await client.embeddings.create({ model: 'demo/embedding', input: ['alpha', 'beta'], encoding_format: 'float' });
  assert.equal(b64.data.length, 2);
  assert.equal(floats.data[0].embedding.length, 256);
  b64.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - floats.data[0].embedding[i]) < 1e-6));
});

test('errors map to SDK exceptions', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope/model', messages: [{ role: 'user', content: 'x' }] }), (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: 'auto', messages: [] }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
  const badKey = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'sk-sy-not-a-key', maxRetries: 0 });
  await assert.rejects(badKey.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'x' }] }), (e) => e instanceof OpenAI.AuthenticationError);
});

test('an org past its daily budget gets insufficient_quota and the SDK does not retry', async () => {
  // demo/large costs ~$0.0026 a request: the first request spends the whole $0.001 budget.
  const [budgeted, url] = await startGateway({ SWITCHYARD__ORGS__DEFAULT__DAILY_BUDGET_USD: '0.001' });
  try {
    let sent = 0;
    // Default retries (2): the SDK would retry a plain 429 twice.
    const counting = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: 'unused',
      fetch: async (input, init) => {
        sent += 1;
        return fetch(input, init);
      },
    });
    await counting.chat.completions.create({ model: 'demo/large', messages: [{ role: 'user', content: 'hi' }] });
    let refused;
    for (let i = 0; i < 5 && !refused; i += 1) {
      sent = 0;
      try {
        await counting.chat.completions.create({ model: 'demo/large', messages: [{ role: 'user', content: 'again' }] });
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(refused instanceof OpenAI.RateLimitError, `not a RateLimitError: ${refused}`);
    assert.equal(refused.code, 'insufficient_quota');
    assert.equal(refused.type, 'insufficient_quota');
    assert.equal(refused.headers.get('x-should-retry'), 'false');
    assert.equal(sent, 1, `the SDK retried: ${sent} requests`);
  } finally {
    budgeted.kill('SIGTERM');
  }
});

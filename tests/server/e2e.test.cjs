// `minicpm serve` end to end: the official `openai` Node client (pinned in package.json) and raw HTTP
// against the real binary on the bundled model (models/minicpm4-tiny-chat).
//   MINICPM_BIN=build/bin/minicpm MINICPM_MODEL=models/minicpm4-tiny-chat node --test tests/server/
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { startServer } = require('./harness.cjs');
const OpenAIModule = require('openai');
const OpenAI = OpenAIModule.OpenAI || OpenAIModule.default || OpenAIModule;

const root = path.resolve(__dirname, '..', '..');
const BIN = process.env.MINICPM_BIN || path.join(root, 'build', 'bin', 'minicpm');
const MODEL = process.env.MINICPM_MODEL || path.join(root, 'models', 'minicpm4-tiny-chat');
const CTX = 1024;

let srv, client, noEos;
test.before(async () => {
  srv = await startServer(BIN, ['-m', MODEL, '--parallel', '32', '--ctx', String(CTX), '-t', '2', '--alias', 'tiny', '-q']);
  client = new OpenAI({ apiKey: 'none', baseURL: srv.base + '/v1', maxRetries: 0, timeout: 120000 });
  // logit_bias that bans every end token (config eos ids 2 and 3, and <|im_end|>)
  const imEnd = (await raw('POST', '/tokenize', { content: '<|im_end|>' })).json.tokens;
  assert.equal(imEnd.length, 1);
  noEos = { 2: -100, 3: -100, [imEnd[0]]: -100 };
});
test.after(async () => {
  const code = await srv.stop();
  assert.equal(code, 0, 'clean exit on SIGTERM');
});

const msgs = (text) => [{ role: 'user', content: text }];
const greedy = { model: 'tiny', temperature: 0 };

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}
async function raw(method, p, body, headers = {}) {
  const r = await fetch(srv.base + p, {
    method, headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* SSE or text */ }
  return { status: r.status, text, json, headers: r.headers };
}
function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, 'error object: ' + r.text);
  for (const k of ['message', 'type', 'param', 'code']) assert.ok(k in r.json.error, 'error.' + k);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}
async function expectBadRequest(promise, param) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, 400, String(e));
    if (param !== undefined) assert.equal(e.param, param);
    return true;
  });
}

test('models and health', async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, 'tiny');
  assert.equal(list.data[0].object, 'model');
  const h = await raw('GET', '/health');
  assert.deepEqual(h.json, { status: 'ok' });
});

test('chat completion: wire format and usage', async () => {
  const r = await client.chat.completions.create({ ...greedy, messages: msgs('Hello, who are you?'), max_tokens: 8 });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(typeof r.created, 'number');
  assert.equal(r.model, 'tiny');
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.ok(r.usage.completion_tokens <= 8);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  // prompt_tokens = the chat template + BOS, as /tokenize counts it.
  const t = await raw('POST', '/tokenize', {
    content: '<|im_start|>user\nHello, who are you?<|im_end|>\n<|im_start|>assistant\n', add_special: true,
  });
  assert.equal(r.usage.prompt_tokens, t.json.tokens.length);
  // The same request again reuses the prefix and gives the same text.
  const r2 = await client.chat.completions.create({ ...greedy, messages: msgs('Hello, who are you?'), max_tokens: 8 });
  assert.ok(r2.usage.prompt_tokens_details.cached_tokens > 0);
  assert.equal(r2.choices[0].message.content, c.message.content);
});

test('streaming: role chunk, one id, one finish chunk, usage, same text as non-stream', async () => {
  const prompt = msgs('Tell me about the sea, in detail.');
  const full = await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 40 });
  for (const include of [true, false]) {
    const chunks = await collect(await client.chat.completions.create({
      ...greedy, messages: prompt, max_tokens: 40, stream: true, ...(include ? { stream_options: { include_usage: true } } : {}),
    }));
    assert.ok(chunks.length >= 3);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1, 'one id for all chunks');
    assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
    for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.filter((c) => c.choices.some((x) => x.delta && x.delta.role)).length, 1, 'role only first');
    const finals = chunks.filter((c) => c.choices.some((x) => x.finish_reason !== null));
    assert.equal(finals.length, 1, 'exactly one finish chunk');
    assert.deepEqual(finals[0].choices[0].delta, {});
    assert.equal(finals[0].choices[0].finish_reason, full.choices[0].finish_reason);
    const text = chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
    assert.equal(text, full.choices[0].message.content);
    assert.ok(!text.includes('\uFFFD'));
    const usage = chunks.filter((c) => c.usage);
    if (include) {
      assert.equal(usage.length, 1);
      const last = chunks[chunks.length - 1];
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.completion_tokens, full.usage.completion_tokens);
      assert.equal(last.usage.prompt_tokens, full.usage.prompt_tokens);
    } else {
      assert.equal(usage.length, 0);
    }
  }
  // The strict accumulator of the client.
  const final = await client.chat.completions.stream({ ...greedy, messages: prompt, max_tokens: 40 }).finalChatCompletion();
  assert.equal(final.choices[0].message.content, full.choices[0].message.content);
  // Raw SSE framing: data lines, blank-line separated, [DONE] last.
  const r = await raw('POST', '/v1/chat/completions', { ...greedy, messages: prompt, max_tokens: 5, stream: true });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const events = r.text.split('\n\n').filter((e) => e.length);
  for (const e of events) assert.match(e, /^data: /);
  assert.equal(events[events.length - 1], 'data: [DONE]');
});

test('stop strings: cut before the first occurrence, never leaked, same streamed', async () => {
  const prompt = msgs('Write a long story about a dragon and a knight.');
  const full = (await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 48 })).choices[0].message.content;
  assert.ok(full.length > 12, full);
  for (const off of [2, Math.floor(full.length / 2)]) {
    const stop = full.slice(off, off + 4);
    const expect = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 48, stop: [stop, 'zzqq'] });
    assert.equal(r.choices[0].message.content, expect);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const chunks = await collect(await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 48, stop, stream: true }));
    assert.equal(chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join(''), expect);
  }
});

test('legacy completions and tokenize round trip', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 2 });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.choices[0].logprobs.tokens.length, r.usage.completion_tokens);
  assert.equal(r.choices[0].logprobs.top_logprobs[0] && Object.keys(r.choices[0].logprobs.top_logprobs[0]).length, 2);
  const s = await collect(await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true }));
  assert.equal(s.map((c) => (c.choices[0] && c.choices[0].text) || '').join(''), r.choices[0].text);
  const text = 'Hello world, 你好, café 🙂';
  const t = await raw('POST', '/tokenize', { content: text, add_special: true });
  assert.equal(t.json.tokens[0], 1, 'BOS first');
  const d = await raw('POST', '/detokenize', { tokens: t.json.tokens.slice(1) });
  assert.equal(d.json.content, text);
});

test('logprobs, logit_bias, seed and n', async () => {
  const prompt = msgs('Name a colour.');
  const r = await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 6, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  for (const e of lp) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.ok(Array.isArray(e.bytes));
  }
  const noLp = await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 2 });
  assert.equal(noLp.choices[0].logprobs, null);
  // Ban the first greedy token (its id is in the entry, as llama.cpp adds it): the first token changes.
  assert.equal(typeof lp[0].id, 'number');
  const b = await client.chat.completions.create({ ...greedy, messages: prompt, max_tokens: 3, logprobs: true,
    logit_bias: { [lp[0].id]: -100 } });
  assert.notEqual(b.choices[0].logprobs.content[0].id, lp[0].id);
  const pieces = (await raw('POST', '/tokenize', { content: 'x y', with_pieces: true })).json.tokens;
  assert.ok(pieces.length >= 1 && pieces[0].id !== undefined && typeof pieces[0].piece === 'string');
  // Seeds: reproducible, and different seeds differ.
  const sample = (seed) => client.chat.completions.create({ model: 'tiny', messages: prompt, max_tokens: 12, temperature: 1.5, seed });
  const [a1, a2, c1] = await Promise.all([sample(11), sample(11), sample(12)]);
  assert.equal(a1.choices[0].message.content, a2.choices[0].message.content);
  assert.notEqual(a1.choices[0].message.content, c1.choices[0].message.content);
  const n = await client.chat.completions.create({ model: 'tiny', messages: prompt, max_tokens: 12, temperature: 1.5, n: 2, seed: 5 });
  assert.equal(n.choices.length, 2);
  assert.deepEqual(n.choices.map((c) => c.index), [0, 1]);
  assert.notEqual(n.choices[0].message.content, n.choices[1].message.content);
});

test('errors: 400 with param, before any stream', async () => {
  const m = msgs('hi');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, temperature: -1 }), 'temperature');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, top_p: 1.5 }), 'top_p');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, logprobs: true, top_logprobs: 21 }), 'top_logprobs');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, n: 0 }), 'n');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, n: 33 }), 'n');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, max_tokens: 0 }), 'max_tokens');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, max_completion_tokens: -5 }), 'max_completion_tokens');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, logit_bias: { 5: 200 } }), 'logit_bias');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: [] }), 'messages');
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] }), 'messages[0].role');
  // Context overflow: 400 naming both numbers, also with stream:true (no 200 stream).
  const long = msgs('word '.repeat(1500));
  for (const stream of [false, true]) {
    await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: long, stream }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.code, 'context_length_exceeded');
      assert.match(e.message, new RegExp(`\\b${CTX}\\b`));
      assert.match(e.message, /the prompt is \d+ tokens/);
      return true;
    });
  }
  // max_tokens beyond the context: clamped, finish_reason length.
  const big = await client.chat.completions.create({ ...greedy, messages: m, max_tokens: 1e9, logit_bias: noEos });
  assert.equal(big.choices[0].finish_reason, 'length');
  assert.equal(big.usage.prompt_tokens + big.usage.completion_tokens, CTX + 1);
  // Raw HTTP: what the client cannot send.
  assertError(await raw('POST', '/v1/chat/completions', '{"messages": ['), 400, null);
  assertError(await raw('POST', '/v1/chat/completions', '[]'), 400);
  assertError(await raw('POST', '/v1/chat/completions', '42'), 400);
  assertError(await raw('POST', '/v1/chat/completions', ''), 400);
  assertError(await raw('POST', '/v1/chat/completions', { messages: 'str' }), 400, 'messages');
  assertError(await raw('POST', '/v1/chat/completions', { messages: [123] }), 400, 'messages[0]');
  assertError(await raw('POST', '/v1/chat/completions', { messages: [{}] }), 400, 'messages[0].role');
  assertError(await raw('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 123 }] }), 400, 'messages[0].content');
  assertError(await raw('POST', '/v1/chat/completions', { messages: m, max_tokens: '8' }), 400, 'max_tokens');
  assertError(await raw('POST', '/v1/chat/completions', { messages: m, stream_options: { include_usage: true } }), 400, 'stream_options');
  assertError(await raw('POST', '/v1/chat/completions', '['.repeat(100000)), 400);
  assertError(await raw('POST', '/v1/chat/completions', 'a=b', { 'Content-Type': 'application/x-www-form-urlencoded' }), 415);
  assertError(await raw('GET', '/v1/nothing'), 404);
  const ok = await raw('POST', '/v1/chat/completions', { messages: m, max_tokens: 2, user: 'u', metadata: { a: 1 }, store: false });
  assert.equal(ok.status, 200, ok.text);
});

test('32 concurrent streams (one batch) equal their solo greedy output', async () => {
  const prompts = Array.from({ length: 32 }, (_, i) => msgs(`Request ${i}: tell me something about the number ${i * 7}.`));
  const solo = [];
  for (const p of prompts) solo.push((await client.chat.completions.create({ ...greedy, messages: p, max_tokens: 24 })).choices[0].message.content);
  const steps = async () => Number((await raw('GET', '/metrics')).text.match(/^minicpm_decode_steps_total (\d+)/m)[1]);
  const gen = async () => Number((await raw('GET', '/metrics')).text.match(/^minicpm_generated_tokens_total (\d+)/m)[1]);
  const [s0, g0] = [await steps(), await gen()];
  const together = await Promise.all(prompts.map(async (p) => {
    const chunks = await collect(await client.chat.completions.create({ ...greedy, messages: p, max_tokens: 24, stream: true }));
    return chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
  }));
  assert.deepEqual(together, solo);
  const [s1, g1] = [await steps(), await gen()];
  assert.ok((s1 - s0) * 4 < g1 - g0, `the streams shared forward passes (${s1 - s0} steps for ${g1 - g0} tokens)`);
  const metrics = await raw('GET', '/metrics');
  assert.match(metrics.text, /^minicpm_requests_total \d+/m);
  assert.match(metrics.text, /^minicpm_requests_processing 0/m);
});

test('load: 64 concurrent streaming clients, every stream well-formed', async () => {
  const res = await Promise.all(Array.from({ length: 64 }, async (_, i) => {
    const r = await raw('POST', '/v1/chat/completions', { messages: msgs(`client ${i}`), max_tokens: 12, temperature: 0.7, seed: i, stream: true });
    assert.equal(r.status, 200, r.text);
    const events = r.text.split('\n\n').filter((e) => e.length);
    assert.equal(events[events.length - 1], 'data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.filter((c) => c.choices.some((x) => x.finish_reason)).length, 1);
    return chunks[0].id;
  }));
  assert.equal(new Set(res).size, 64, 'distinct ids');
});

test('a non-streamed request stops when its client disconnects', async () => {
  const http = require('http');
  const req = http.request(srv.base + '/v1/chat/completions', { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } });
  req.on('error', () => {});
  req.end(JSON.stringify({ messages: msgs('Go on forever.'), max_tokens: 900, temperature: 0, logit_bias: noEos }));
  const busy = async () => Number((await raw('GET', '/metrics')).text.match(/^minicpm_requests_processing (\d+)/m)[1]);
  const gen = async () => Number((await raw('GET', '/metrics')).text.match(/^minicpm_generated_tokens_total (\d+)/m)[1]);
  const g0 = await gen();
  const t0 = Date.now();
  while ((await busy()) === 0) {
    assert.ok(Date.now() - t0 < 3000, 'the request never started');
    await new Promise((r) => setTimeout(r, 10));
  }
  req.destroy();
  const t1 = Date.now();
  while ((await busy()) !== 0) {
    assert.ok(Date.now() - t1 < 3000, 'still generating for a client that left');
    await new Promise((r) => setTimeout(r, 50));
  }
  const n = (await gen()) - g0;
  assert.ok(n < 700, `stopped early (${n} of up to 900 tokens generated)`);
});

test('slow-loris sockets do not starve other clients', async () => {
  const net = require('net');
  const socks = [];
  for (let i = 0; i < 40; ++i) {
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');  // headers never finish
    socks.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  const h = await raw('GET', '/health');
  assert.equal(h.status, 200);
  assert.ok(Date.now() - t0 < 1000, 'health answered while 40 sockets dribble');
  const c = await client.chat.completions.create({ ...greedy, messages: msgs('still there?'), max_tokens: 4 });
  assert.ok(c.choices.length === 1);
  for (const s of socks) s.destroy();
});

test('client disconnect mid-stream frees the slot', async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ ...greedy, messages: msgs('Go on forever.'), max_tokens: 200, stream: true,
    logit_bias: noEos }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 3) { ac.abort(); break; }
  } catch (e) { /* the aborted read may throw */ }
  assert.equal(n, 3);
  const t0 = Date.now();
  for (;;) {
    const m = (await raw('GET', '/metrics')).text;
    if (/^minicpm_requests_processing 0/m.test(m)) break;
    assert.ok(Date.now() - t0 < 3000, 'slot still busy after the client left');
    await new Promise((r) => setTimeout(r, 50));
  }
});

test('SIGTERM ends open streams and exits cleanly', async () => {
  const s3 = await startServer(BIN, ['-m', MODEL, '--parallel', '2', '--ctx', '1024', '-t', '1', '-q']);
  const c3 = new OpenAI({ apiKey: 'x', baseURL: s3.base + '/v1', maxRetries: 0 });
  const streams = await Promise.all([0, 1, 2].map(() => c3.chat.completions.create({ model: 'x', messages: msgs('Talk.'),
    max_tokens: 900, temperature: 0, stream: true, logit_bias: noEos })));
  const iters = streams.map((st) => st[Symbol.asyncIterator]());
  await Promise.all(iters.map((it) => it.next()));
  const ended = iters.map(async (it) => { try { for (let x = await it.next(); !x.done; x = await it.next()) {} return 'done'; } catch (e) { return 'error'; } });
  const t0 = Date.now();
  s3.proc.kill('SIGTERM');
  const code = await new Promise((r) => s3.proc.on('exit', (c, sig) => r(c ?? sig)));
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 5000, 'exited within 5 s');
  const outcomes = await Promise.all(ended);
  assert.equal(outcomes.length, 3);  // every stream ended (an error event or the end of the stream), none hangs
});

test('api key, queue limit (second server)', async () => {
  const s2 = await startServer(BIN, ['-m', MODEL, '--parallel', '1', '--max-queue', '0', '--ctx', '1024', '-t', '1', '--api-key', 'sekret', '-q']);
  try {
    const noKey = await fetch(s2.base + '/v1/models');
    assert.equal(noKey.status, 401);
    const bad = await fetch(s2.base + '/v1/models', { headers: { Authorization: 'Bearer nope' } });
    assert.equal(bad.status, 401);
    assert.equal((await bad.json()).error.type, 'authentication_error');
    assert.equal((await fetch(s2.base + '/health')).status, 200);
    const c2 = new OpenAI({ apiKey: 'sekret', baseURL: s2.base + '/v1', maxRetries: 0 });
    assert.equal((await c2.models.list()).data.length, 1);
    // One slot, no queue: a second request while the first streams gets 503.
    const long = await c2.chat.completions.create({ model: 'x', messages: msgs('Talk.'), max_tokens: 1000, temperature: 0, stream: true,
      logit_bias: noEos });
    const it = long[Symbol.asyncIterator]();
    await it.next();
    // (own socket: the client's connection pool may hold a second request behind the open stream)
    const second = await new Promise((resolve, reject) => {
      const req = require('http').request(s2.base + '/v1/chat/completions', { method: 'POST', agent: false,
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sekret' } }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ messages: msgs('Hi'), max_tokens: 2 }));
    });
    assert.equal(second.status, 503, second.body);
    assert.equal(JSON.parse(second.body).error.type, 'unavailable_error');
    for (let x = await it.next(); !x.done; x = await it.next()) { /* drain */ }
  } finally {
    assert.equal(await s2.stop(), 0);
  }
});

test('speculative decoding (--spec eagle, the shipped draft): the same replies as plain decoding', async () => {
  const s4 = await startServer(BIN, ['-m', MODEL, '--parallel', '4', '--ctx', String(CTX), '-t', '2', '--spec', 'eagle', '-q']);
  try {
    const c4 = new OpenAI({ apiKey: 'none', baseURL: s4.base + '/v1', maxRetries: 0, timeout: 120000 });
    const cases = [
      { ...greedy, messages: msgs('Write a short poem about the sea.'), max_tokens: 64 },
      { ...greedy, messages: msgs('List three colours.'), max_tokens: 48, stop: ['\n\n', 'Blue'] },
      { model: 'tiny', temperature: 0.9, seed: 11, messages: msgs('Tell me a story about a dragon.'), max_tokens: 48 },
      { ...greedy, messages: msgs('Give me a JSON object about a cat.'), max_tokens: 48, response_format: { type: 'json_object' } },
    ];
    const text = (r) => r.choices[0].message.content;
    const plain = [];
    for (const c of cases) plain.push(await client.chat.completions.create(c));
    for (let i = 0; i < cases.length; ++i) {  // alone: speculative ticks
      const r = await c4.chat.completions.create(cases[i]);
      assert.equal(text(r), text(plain[i]), `case ${i}`);
      assert.equal(r.choices[0].finish_reason, plain[i].choices[0].finish_reason);
      assert.equal(r.usage.completion_tokens, plain[i].usage.completion_tokens);
    }
    const m = (await fetch(s4.base + '/metrics').then((r) => r.text()));
    const steps = Number(m.match(/^minicpm_spec_steps_total (\d+)/m)[1]);
    const tau = Number(m.match(/^minicpm_spec_mean_accepted_length ([\d.]+)/m)[1]);
    assert.ok(steps > 0, 'speculative steps ran');
    assert.ok(tau > 1, `drafts were accepted (mean accepted length ${tau})`);
    // Streamed and two at a time (plain batched ticks while both decode, speculative once one is alone).
    const both = await Promise.all(cases.slice(0, 2).map(async (c) => {
      const chunks = await collect(await c4.chat.completions.create({ ...c, stream: true }));
      return chunks.map((x) => (x.choices[0] && x.choices[0].delta.content) || '').join('');
    }));
    assert.deepEqual(both, plain.slice(0, 2).map(text));
  } finally {
    assert.equal(await s4.stop(), 0);
  }
});

test('structured output: json_schema and json_object always parse and validate', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 16 },
      age: { type: 'integer' },
      colours: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 3 },
      pet: { anyOf: [{ type: 'null' }, { type: 'object', properties: { kind: { const: 'cat' } }, required: ['kind'], additionalProperties: false }] },
      ok: { type: 'boolean' },
    },
    required: ['name', 'age', 'colours', 'pet', 'ok'],
    additionalProperties: false,
  };
  const rf = { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } };
  for (let seed = 0; seed < 4; ++seed) {
    const r = await client.chat.completions.parse({ model: 'tiny', messages: msgs('Describe a person as JSON.'), temperature: 1.3,
      seed, max_tokens: 200, response_format: rf });
    const p = r.choices[0].message.parsed;
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual(Object.keys(p), ['name', 'age', 'colours', 'pet', 'ok'], 'schema order');
    assert.equal(typeof p.name, 'string');
    assert.ok([...p.name].length <= 16);
    assert.ok(Number.isInteger(p.age));
    assert.ok(p.colours.length >= 1 && p.colours.length <= 3 && p.colours.every((c) => ['red', 'green', 'blue'].includes(c)));
    assert.ok(p.pet === null || (p.pet.kind === 'cat' && Object.keys(p.pet).length === 1));
    assert.equal(typeof p.ok, 'boolean');
  }
  // Streamed: the joined deltas are the same document as the non-streamed reply.
  const args = { model: 'tiny', messages: msgs('JSON please.'), temperature: 1.0, seed: 9, max_tokens: 200, response_format: rf };
  const whole = (await client.chat.completions.create(args)).choices[0].message.content;
  const chunks = await collect(await client.chat.completions.create({ ...args, stream: true }));
  assert.equal(chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join(''), whole);
  JSON.parse(whole);
  // json_object: any object.
  for (let seed = 0; seed < 3; ++seed) {
    const r = await client.chat.completions.create({ model: 'tiny', messages: msgs('An object.'), temperature: 1.0, seed,
      max_tokens: 300, response_format: { type: 'json_object' } });
    if (r.choices[0].finish_reason === 'stop') {
      const v = JSON.parse(r.choices[0].message.content);
      assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v));
    }
  }
  const c = await client.chat.completions.create({ model: 'tiny', messages: msgs('x'), temperature: 1,
    response_format: { type: 'json_schema', json_schema: { name: 'c', schema: { const: '42' } } } });
  assert.equal(c.choices[0].message.content, '"42"');
  // Too few tokens: 'length', never 'stop' (the client's parse() then refuses it).
  const short = await client.chat.completions.create({ ...args, max_tokens: 3 });
  assert.equal(short.choices[0].finish_reason, 'length');
  // Invalid / unsupported schemas and formats: 400 naming what.
  const bad = async (response_format, pattern) => {
    const r = await raw('POST', '/v1/chat/completions', { messages: msgs('x'), response_format });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, pattern);
    assert.ok(r.json.error.param.startsWith('response_format'));
  };
  await bad({ type: 'json_schema', json_schema: { name: 'x', schema: 123 } }, /must be an object/);
  await bad({ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'hiccup' } } }, /unknown type 'hiccup'/);
  await bad({ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string', pattern: 'x+' } } } } },
    /unsupported JSON schema: keyword 'pattern' at #\/properties\/a/);
  await bad({ type: 'yaml' }, /json_object or json_schema/);
});

test('tools: forced calls parse into tool_calls, streamed deltas, follow-up turn, errors', async () => {
  const tools = [
    { type: 'function', function: { name: 'get_weather', description: 'Weather for a city.',
      parameters: { type: 'object', properties: { location: { type: 'string', maxLength: 20 }, unit: { enum: ['c', 'f'] } },
        required: ['location'] } } },
    { type: 'function', function: { name: 'add', description: 'Add numbers.',
      parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'] } } },
  ];
  const m = msgs('What is the weather in Paris?');
  const named = await client.chat.completions.create({ model: 'tiny', messages: m, tools, temperature: 0.8, seed: 1, max_tokens: 60,
    tool_choice: { type: 'function', function: { name: 'get_weather' } } });
  const c = named.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, null);
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  const a = JSON.parse(call.function.arguments);
  assert.equal(typeof a.location, 'string');
  assert.ok(a.unit === undefined || ['c', 'f'].includes(a.unit));
  // required: one call of one of the tools.
  for (let seed = 0; seed < 3; ++seed) {
    const r = await client.chat.completions.create({ model: 'tiny', messages: m, tools, tool_choice: 'required', temperature: 1, seed, max_tokens: 60 });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    const tc = r.choices[0].message.tool_calls;
    assert.equal(tc.length, 1);
    const args = JSON.parse(tc[0].function.arguments);
    if (tc[0].function.name === 'add') assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b));
    else assert.equal(typeof args.location, 'string');
  }
  // Streamed: id/type/name in the first delta, argument fragments join to the same JSON, nothing leaks.
  const args = { model: 'tiny', messages: m, tools, temperature: 0.8, seed: 1, max_tokens: 60,
    tool_choice: { type: 'function', function: { name: 'get_weather' } } };
  const chunks = await collect(await client.chat.completions.create({ ...args, stream: true }));
  const deltas = chunks.flatMap((ch) => (ch.choices[0] && ch.choices[0].delta.tool_calls) || []);
  assert.ok(deltas.length >= 1);
  assert.match(deltas[0].id, /^call_/);
  assert.equal(deltas[0].type, 'function');
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.equal(deltas.map((d) => d.function.arguments || '').join(''), call.function.arguments);
  const content = chunks.map((ch) => (ch.choices[0] && ch.choices[0].delta.content) || '').join('');
  assert.ok(!content.includes('<|'), content);
  assert.equal(chunks.filter((ch) => ch.choices[0] && ch.choices[0].finish_reason).map((ch) => ch.choices[0].finish_reason).join(), 'tool_calls');
  const final = await client.chat.completions.stream(args).finalChatCompletion();
  assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
  // auto: whatever the tiny model writes, no marker reaches content; none: no calls at all.
  for (const tool_choice of ['auto', 'none']) {
    const r = await client.chat.completions.create({ model: 'tiny', messages: m, tools, tool_choice, temperature: 0, max_tokens: 30 });
    assert.ok(!(r.choices[0].message.content || '').includes('<|tool_call_start|>'));
    if (tool_choice === 'none') assert.equal(r.choices[0].message.tool_calls, undefined);
  }
  // Follow-up turn with the call and its result.
  const follow = await client.chat.completions.create({ model: 'tiny', tools, temperature: 0, max_tokens: 16, messages: [
    ...m, { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }] });
  assert.equal(follow.choices[0].message.role, 'assistant');
  assert.ok(['stop', 'length', 'tool_calls'].includes(follow.choices[0].finish_reason));
  // Errors.
  await expectBadRequest(client.chat.completions.create({ model: 'tiny', messages: m, tools,
    tool_choice: { type: 'function', function: { name: 'nope' } } }), 'tool_choice');
  assertError(await raw('POST', '/v1/chat/completions', { messages: m, tools: 'x' }), 400, 'tools');
  assertError(await raw('POST', '/v1/chat/completions', { messages: m, tools: [{ type: 'function', function: { name: 'bad name' } }] }),
    400, 'tools[0].function.name');
  assertError(await raw('POST', '/v1/chat/completions', { messages: m, tool_choice: 'required' }), 400, 'tool_choice');
});

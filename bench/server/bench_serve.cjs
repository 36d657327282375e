// Aggregate decode speed of `minicpm serve` under concurrent streams, and time to first token.
//   node bench/server/bench_serve.cjs BIN MODEL_DIR [--streams 1,4,8] [--tokens 64] [--threads 2] [--parallel 8] [--fast-prefill] [--spec eagle|ngram]
//   node bench/server/bench_serve.cjs --url http://127.0.0.1:8081 [--streams ...] [--tokens 64]
//     (the same measurement against a server that is already running, e.g. llama.cpp's llama-server
//     started with -np 8 on the GGUF of the same checkpoint: the side-by-side in docs/benchmarks.md)
// Starts the server, runs for each stream count S: S concurrent streaming chat requests of
// --tokens tokens each (end tokens banned so every stream is full length) and reports
// S * tokens / wall time (from the first request to the last [DONE]); then the time to first token
// of a 512-token prompt, cold and when the same prompt is sent again (prefix cache hit).
const path = require('path');
const { startServer } = require(path.join(__dirname, '..', '..', 'tests', 'server', 'harness.cjs'));

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const URL = opt('--url', '');
const [BIN, MODEL] = URL ? ['', URL] : args;
const streams = opt('--streams', '1,4,8').split(',').map(Number);
const tokens = Number(opt('--tokens', '64'));
const threads = opt('--threads', '2');
const parallel = opt('--parallel', String(Math.max(...streams)));

async function stream(base, body) {
  const t0 = performance.now();
  const r = await fetch(base + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '', first = 0, usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut); buf = buf.slice(cut + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      if (!first && j.choices.length && j.choices[0].delta && j.choices[0].delta.content) first = performance.now();
    }
  }
  return { ttft: (first - t0) / 1000, usage, end: performance.now() };
}

(async () => {
  const extra = args.includes('--fast-prefill') ? ['--fast-prefill'] : [];
  if (opt('--spec', '')) extra.push('--spec', opt('--spec', ''));
  const srv = URL ? { base: URL.replace(/\/+$/, ''), stop: async () => {} }
    : await startServer(BIN, ['-m', MODEL, '--parallel', parallel, '--ctx', '1024', '-t', threads, '-q', ...extra], { timeoutMs: 300000 });
  try {
    const imEnd = (await (await fetch(srv.base + '/tokenize', { method: 'POST', body: JSON.stringify({ content: '<|im_end|>' }) })).json()).tokens;
    const noEos = { 2: -100 };
    for (const t of imEnd) noEos[t] = -100;
    console.log(URL ? `server at ${URL}, ${tokens} tokens per stream`
      : `minicpm serve, ${MODEL}, --parallel ${parallel}, -t ${threads}${extra.length ? ' ' + extra.join(' ') : ''}, ${tokens} tokens per stream`);
    // warm-up
    await stream(srv.base, { messages: [{ role: 'user', content: 'warm up' }], max_tokens: 4, temperature: 0, logit_bias: noEos });
    for (const S of streams) {
      const t0 = performance.now();
      const res = await Promise.all(Array.from({ length: S }, (_, i) => stream(srv.base, {
        messages: [{ role: 'user', content: `Stream ${i}: say something.` }], max_tokens: tokens, temperature: 0, logit_bias: noEos })));
      const wall = (Math.max(...res.map((r) => r.end)) - t0) / 1000;
      const n = res.reduce((a, r) => a + r.usage.completion_tokens, 0);
      const ttft = res.reduce((a, r) => a + r.ttft, 0) / S;
      console.log(`  ${String(S).padStart(2)} streams: ${(n / wall).toFixed(1).padStart(7)} tok/s aggregate (${n} tokens in ${wall.toFixed(2)} s), ` +
                  `${(n / wall / S).toFixed(1)} tok/s per stream, mean TTFT ${(ttft * 1000).toFixed(0)} ms`);
    }
    const words = 'the quick brown fox jumps over the lazy dog and keeps on running through the field ';
    let long = '';
    while (long.length < 2600) long += words;
    const body = { messages: [{ role: 'user', content: long }], max_tokens: 1, temperature: 0 };
    const p = (await (await fetch(srv.base + '/tokenize', { method: 'POST', body: JSON.stringify({ content: long }) })).json()).tokens.length;
    const cold = await stream(srv.base, body);
    const warm = await stream(srv.base, body);
    console.log(`  TTFT, ${p}-token user message: cold ${(cold.ttft * 1000).toFixed(0)} ms, prefix hit ${(warm.ttft * 1000).toFixed(0)} ms ` +
                `(cached_tokens ${warm.usage.prompt_tokens_details ? warm.usage.prompt_tokens_details.cached_tokens : 'not reported'} of ${warm.usage.prompt_tokens})`);
  } finally {
    await srv.stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });

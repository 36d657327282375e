// The web chat page (GET /) in a real browser: Debian's headless Chromium driven by puppeteer-core.
// Sends a message, sees the reply stream in, stops a long reply, and finds the conversation again after
// a reload (it is kept in the browser). MINICPM_SCREENSHOT=path saves a screenshot.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { startServer } = require('./harness.cjs');

const root = path.resolve(__dirname, '..', '..');
const BIN = process.env.MINICPM_BIN || path.join(root, 'build', 'bin', 'minicpm');
const MODEL = process.env.MINICPM_MODEL || path.join(root, 'models', 'minicpm4-tiny-chat');
const CHROMIUM = process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

const HAVE_PUPPETEER = fs.existsSync(path.join(__dirname, 'node_modules', 'puppeteer-core'));
const skip = !CHROMIUM ? 'Chromium is not installed (scripts/test.sh installs it)'
  : !HAVE_PUPPETEER ? 'puppeteer-core is not installed (scripts/test.sh runs npm ci)' : false;

test('web chat page streams a reply, stops, keeps the conversation', { skip }, async () => {
  const puppeteer = require('puppeteer-core');
  const srv = await startServer(BIN, ['-m', MODEL, '--parallel', '2', '--ctx', '1024', '-t', '2', '--alias', 'tiny-chat', '-q']);
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 640 });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(srv.base + '/', { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('model').textContent === 'tiny-chat');
    // Streamed reply: the assistant bubble grows while the page is in the streaming state.
    await page.$eval('#temperature', (e) => { e.value = '0'; e.dispatchEvent(new Event('change')); });
    await page.type('[data-testid=input]', 'Hello! Tell me about the sea.');
    await page.click('[data-testid=send]');
    await page.waitForFunction(() => document.body.dataset.state === 'done', { timeout: 60000 });
    const bubbles = await page.$$eval('.msg', (els) => els.map((e) => ({ role: e.dataset.role, text: e.firstChild ? e.firstChild.textContent : '' })));
    assert.equal(bubbles.length, 2);
    assert.equal(bubbles[0].role, 'user');
    assert.equal(bubbles[1].role, 'assistant');
    assert.ok(bubbles[1].text.length > 0, 'a reply was streamed');
    const meta = await page.$eval('.msg.assistant .meta', (e) => e.textContent);
    assert.match(meta, /tok\/s/);
    // The reply equals what the API gives for the same request (greedy).
    const api = await (await fetch(srv.base + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello! Tell me about the sea.' }], temperature: 0, top_p: 0.9, max_tokens: 256 }) })).json();
    assert.equal(bubbles[1].text, api.choices[0].message.content);
    if (process.env.MINICPM_SCREENSHOT) await page.screenshot({ path: process.env.MINICPM_SCREENSHOT });
    // Stop: a long reply is cut by the stop button. (The test bans the end tokens in the page's request
    // so the tiny model cannot finish before the click.)
    const imEnd = (await (await fetch(srv.base + '/tokenize', { method: 'POST', body: JSON.stringify({ content: '<|im_end|>' }),
      headers: { 'Content-Type': 'application/json' } })).json()).tokens[0];
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/v1/chat/completions')) {
        const body = JSON.parse(req.postData());
        body.logit_bias = { 2: -100, 3: -100, [imEnd]: -100 };
        req.continue({ postData: JSON.stringify(body) });
      } else {
        req.continue();
      }
    });
    await page.$eval('#max_tokens', (e) => { e.value = '900'; e.dispatchEvent(new Event('change')); });
    await page.$eval('#temperature', (e) => { e.value = '1.5'; e.dispatchEvent(new Event('change')); });
    await page.type('[data-testid=input]', 'Now write a very long story.');
    await page.click('[data-testid=send]');
    await page.waitForFunction(() => document.body.dataset.state === 'streaming');
    await page.waitForFunction(() => { const m = document.querySelectorAll('.msg.assistant'); return m.length === 2 && m[1].textContent.length > 0; });
    await page.click('[data-testid=stop]');
    await page.waitForFunction(() => document.body.dataset.state === 'done', { timeout: 10000 });
    const stopped = await page.$$eval('.msg.assistant .meta', (els) => els[els.length - 1].textContent);
    assert.match(stopped, /stopped/);
    // Kept in the browser: a reload shows the conversation again.
    await page.setRequestInterception(false);
    page.removeAllListeners('request');
    await page.reload({ waitUntil: 'load' });
    const after = await page.$$eval('.msg', (els) => els.length);
    assert.equal(after, 4);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    assert.equal(await srv.stop(), 0);
  }
});

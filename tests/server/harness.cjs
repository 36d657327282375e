// Starts the real `minicpm serve` binary on a free loopback port and stops it (SIGTERM, then SIGKILL).
const { spawn } = require('child_process');

async function startServer(binary, args, { timeoutMs = 60000 } = {}) {
  const proc = spawn(binary, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not print its port:\n' + stderr)), timeoutMs);
    proc.stderr.on('data', (d) => {
      stderr += d.toString();
      process.stderr.write(d);
      const m = stderr.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) before listening:\n${stderr}`)); });
  });
  const base = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  let sawLoading = false;
  for (;;) {
    if (proc.exitCode !== null) throw new Error('server exited while loading:\n' + stderr);
    try {
      const r = await fetch(base + '/health');
      if (r.status === 200) break;
      if (r.status === 503) {
        const j = await r.json();
        if (!j.error || typeof j.error.message !== 'string') throw new Error('503 without an error object');
        sawLoading = true;
      }
    } catch (e) { if (!(e.cause && e.cause.code === 'ECONNREFUSED')) throw e; }
    if (Date.now() - t0 > timeoutMs) throw new Error('server not healthy in time');
    await new Promise((r) => setTimeout(r, 20));
  }
  const stop = async () => {
    if (proc.exitCode !== null) return proc.exitCode;
    const exited = new Promise((r) => proc.on('exit', (code, sig) => r(code ?? sig)));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  return { proc, port, base, stop, sawLoading };
}

module.exports = { startServer };

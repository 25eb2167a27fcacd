// Opens a new connection to an echo server (apps/echo-server.ts) over and over, run inside a pod's netns:
//   node connect-probe.js --host 10.0.2.3 --port 8080 [--interval-ms 100] [--attempt-timeout-ms 1000]
// Each attempt connects, sends one marker line, half-closes and expects the banner and the marker back. One JSON
// line per attempt: {"ok":true,"start":<ms epoch>,"end":<ms epoch>} or {"ok":false,...,"error":"..."}. Runs until
// killed. A test reads the attempts to see when new connections started to be refused (or allowed) again.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string', default: '8080' },
    marker: { type: 'string', default: 'AMBIT-PROBE' },
    'interval-ms': { type: 'string', default: '100' },
    'attempt-timeout-ms': { type: 'string', default: '1000' },
  },
});
if (!values.host) {
  process.stderr.write('connect-probe: --host is required\n');
  process.exit(2);
}

function attempt(seq: number): Promise<Record<string, unknown>> {
  const start = Date.now();
  const marker = `${values.marker}-${seq}\n`;
  return new Promise((resolve) => {
    let got = '';
    let done = false;
    const finish = (ok: boolean, error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ seq, ok, start, end: Date.now(), ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(false, `no echo within ${values['attempt-timeout-ms']} ms`), Number(values['attempt-timeout-ms']));
    const sock = net.connect({ host: values.host!, port: Number(values.port) }, () => sock.end(marker));
    sock.on('data', (c: Buffer) => {
      got += c.toString('latin1');
    });
    sock.on('error', (err) => finish(false, err.message));
    sock.on('close', () => {
      // The banner line, then the marker echoed.
      const nl = got.indexOf('\n');
      if (nl >= 0 && got.startsWith('AMBIT-ECHO') && got.slice(nl + 1) === marker) finish(true);
      else finish(false, `closed after ${got.length} bytes without the echo`);
    });
  });
}

process.on('SIGTERM', () => process.exit(0));
for (let seq = 1; ; seq++) {
  const r = await attempt(seq);
  process.stdout.write(JSON.stringify(r) + '\n');
  await new Promise((res) => setTimeout(res, Number(values['interval-ms'])));
}

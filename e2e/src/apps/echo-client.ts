// Client for echo-server.ts, run with `node echo-client.js --host 10.0.2.2 --port 8080 (--message TEXT | --bytes N)`
// inside a pod netns. Connects, reads the banner line, sends the payload, half-closes, reads the echo, and prints
// one JSON line (EchoClientResult in ../echo.ts). Exit status 0 only if the echo is byte-identical.
// --bytes N sends N random bytes and compares SHA-256 digests, so megabytes are checked without keeping them twice.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string', default: '8080' },
    message: { type: 'string' },
    bytes: { type: 'string' },
    'no-banner': { type: 'boolean', default: false },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});
if (!values.host) {
  process.stderr.write('echo-client: --host is required\n');
  process.exit(2);
}

const payload = values.message !== undefined ? Buffer.from(values.message) : randomBytes(Number(values.bytes ?? '1024'));
const sentSha = createHash('sha256').update(payload).digest('hex');
const received = createHash('sha256');
let receivedBytes = 0;
let banner: string | undefined = values['no-banner'] ? '' : undefined;
let head = Buffer.alloc(0);
const started = Date.now();

let done = false;
let clientLocal: string | null = null;
const finish = (result: Record<string, unknown>, code: number) => {
  if (done) return; // 'error' is followed by 'close'; report once
  done = true;
  process.stdout.write(JSON.stringify({ ...result, ms: Date.now() - started }) + '\n', () => process.exit(code));
};

const timer = setTimeout(() => {
  finish({ ok: false, error: `timed out after ${values['timeout-ms']} ms`, sentBytes: payload.length, receivedBytes }, 1);
}, Number(values['timeout-ms']));

const sock = net.connect({ host: values.host, port: Number(values.port) }, () => {
  clientLocal = `${sock.localAddress}:${sock.localPort}`;
  sock.end(payload); // write everything, then half-close so the server knows the echo is complete
});

sock.on('data', (chunk: Buffer) => {
  if (banner === undefined) {
    // The banner is one line; everything after its newline is already echo.
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0) return;
    banner = head.subarray(0, nl).toString('utf8');
    chunk = head.subarray(nl + 1);
  }
  receivedBytes += chunk.length;
  received.update(chunk);
});

sock.on('error', (err) => {
  clearTimeout(timer);
  finish({ ok: false, error: err.message, sentBytes: payload.length, receivedBytes }, 1);
});

sock.on('close', () => {
  clearTimeout(timer);
  const m = /peer=(\S+):(\d+) local=(\S+):(\d+)/.exec(banner ?? '');
  const receivedSha = received.digest('hex');
  const ok = receivedBytes === payload.length && receivedSha === sentSha;
  finish(
    {
      ok,
      banner: banner ?? null,
      serverSawPeer: m?.[1] ?? null,
      serverSawPeerPort: m ? Number(m[2]) : null,
      serverLocal: m ? `${m[3]}:${m[4]}` : null,
      clientLocal,
      sentBytes: payload.length,
      receivedBytes,
      sentSha,
      receivedSha,
    },
    ok ? 0 : 1,
  );
});

// A long-lived TCP client for the scenario tests, run inside a pod's netns:
//   node hold-client.js --host 10.0.2.3 --port 8080 --marker AMBIT-HOLD [--interval-ms 200] [--no-banner]
// Opens one connection to an echo server (apps/echo-server.ts), reads its banner, then every interval writes one
// line `<marker>-<seq>\n` and waits for it to come back. Prints one JSON line per event on stdout:
//   {"event":"connected","local":"10.0.1.3:40000","banner":"AMBIT-ECHO ..."}
//   {"event":"echo","seq":7,"rttMs":1}         each line echoed back intact
//   {"event":"closed","reason":"...","seq":9}   the connection ended (reset, FIN, timeout); then exit 1
// A test holds this process to prove an established connection survives (or is closed by) something.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string', default: '8080' },
    marker: { type: 'string', default: 'AMBIT-HOLD' },
    'interval-ms': { type: 'string', default: '200' },
    // An echo that has not come back after this long counts as a dead connection.
    'echo-timeout-ms': { type: 'string', default: '5000' },
    'no-banner': { type: 'boolean', default: false },
  },
});
if (!values.host) {
  process.stderr.write('hold-client: --host is required\n');
  process.exit(2);
}
const intervalMs = Number(values['interval-ms']);
const echoTimeoutMs = Number(values['echo-timeout-ms']);
const log = (o: Record<string, unknown>): boolean => process.stdout.write(JSON.stringify({ ...o, at: Date.now() }) + '\n');

let seq = 0;
let pendingSince: number | undefined;
let buffered = '';
let banner: string | undefined = values['no-banner'] ? '' : undefined;
let finished = false;
let timer: NodeJS.Timeout | undefined;

const finish = (reason: string): void => {
  if (finished) return;
  finished = true;
  if (timer) clearInterval(timer);
  log({ event: 'closed', reason, seq });
  sock.destroy();
  process.stdout.write('', () => process.exit(1));
};

const sock = net.connect({ host: values.host, port: Number(values.port) }, () => {
  sock.setNoDelay(true);
  if (banner !== undefined) start();
});

function start(): void {
  log({ event: 'connected', local: `${sock.localAddress}:${sock.localPort}`, banner });
  timer = setInterval(() => {
    if (pendingSince !== undefined) {
      if (Date.now() - pendingSince > echoTimeoutMs) finish(`no echo of ${values.marker}-${seq} within ${echoTimeoutMs} ms`);
      return;
    }
    seq += 1;
    pendingSince = Date.now();
    sock.write(`${values.marker}-${seq}\n`);
  }, intervalMs);
}

sock.on('data', (chunk: Buffer) => {
  buffered += chunk.toString('latin1');
  for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (banner === undefined) {
      banner = line;
      start();
      continue;
    }
    if (line !== `${values.marker}-${seq}` || pendingSince === undefined) {
      finish(`unexpected echo ${JSON.stringify(line.slice(0, 80))} while waiting for ${values.marker}-${seq}`);
      return;
    }
    log({ event: 'echo', seq, rttMs: Date.now() - pendingSince });
    pendingSince = undefined;
  }
});
sock.on('error', (err) => finish(`error: ${err.message}`));
sock.on('end', () => finish('the server ended the connection'));
sock.on('close', () => finish('closed'));
process.on('SIGTERM', () => {
  finished = true;
  sock.destroy();
  process.exit(0);
});

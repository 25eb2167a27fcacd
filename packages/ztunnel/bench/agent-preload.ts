// Preloaded into the agents with NODE_OPTIONS=--import only for the bench's diagnostic flags (node 20 refuses
// --cpu-prof in NODE_OPTIONS); a normal bench run does not load it.
//   AMBIT_BENCH_PROFILE=FILE  SIGUSR2 starts the V8 sampling profiler, the next SIGUSR2 stops it and writes FILE
//                             (.cpuprofile), so only the measured tests are profiled. The agent does not use SIGUSR2.
//   AMBIT_BENCH_NODELAY=all|PORT,...  sockets a net/tls server accepts (on those local ports, or all) get
//                             setNoDelay(true): an experiment to show what Nagle on the agent's accepted sockets
//                             (15001 outbound, 15008 HBONE, 15006 plaintext) costs.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import net from 'node:net';

const out = process.env.AMBIT_BENCH_PROFILE;
if (out) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () => session.post('Profiler.start'));
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, r) => {
      if (!err) writeFileSync(out, JSON.stringify(r.profile));
    });
  });
}

const noDelay = process.env.AMBIT_BENCH_NODELAY;
if (noDelay) {
  const ports = noDelay === 'all' ? null : new Set(noDelay.split(',').map(Number));
  const proto = net.Server.prototype as unknown as { emit: (event: string | symbol, ...args: unknown[]) => boolean };
  const emit = proto.emit;
  proto.emit = function patchedEmit(this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
    const s = args[0];
    if (event === 'connection' && s instanceof net.Socket && (!ports || ports.has(s.localPort ?? 0))) s.setNoDelay(true);
    return emit.call(this, event, ...args);
  };
}

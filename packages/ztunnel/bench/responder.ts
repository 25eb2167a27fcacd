// The server app of the benchmark, run inside the server pod's netns: one listener speaking the benchmark app
// protocol of @ambit/bench-kit (echo or bulk sink, chosen by the first byte).
// Prints one JSON line {"event":"listening"} and then nothing per connection (so stdout costs nothing).
//
// usage: node responder.js --port 8080 [--host 0.0.0.0]
import net from 'node:net';
import { handleBenchConnection } from '@ambit/bench-kit';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1]! : dflt; };
const port = Number(arg('port', '8080'));
const host = arg('host', '0.0.0.0');

const server = net.createServer(handleBenchConnection);
server.listen({ port, host, backlog: 4096 }, () => console.log(JSON.stringify({ event: 'listening', port, host })));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));

// The app behind every path: one TCP listener on 127.0.0.1 speaking the benchmark app protocol of
// @ambit/bench-kit (echo or bulk sink, chosen by the first byte).
import net, { type AddressInfo, type Socket } from 'node:net';
import { handleBenchConnection } from '@ambit/bench-kit';
import { serveParent } from './ipc.js';

const sockets = new Set<Socket>();

function onConnection(s: Socket): void {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  handleBenchConnection(s);
}

const server = net.createServer(onConnection);

serveParent({
  start: () => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port }));
  }),
  connections: () => sockets.size,
});

// One kubelet probe, run inside the pod's network namespace (our kubelet has no way to open a socket in another
// netns itself): `node probe.js tcp HOST PORT TIMEOUT_MS` or `node probe.js http URL TIMEOUT_MS [NAME:VALUE...]`.
// Exit 0 = success. HTTP success is a status in [200, 400), as the kubelet defines it; redirects are not followed.
import http from 'node:http';
import net from 'node:net';

const [kind, ...rest] = process.argv.slice(2);
const fail = (why: string) => {
  process.stderr.write(`${why}\n`);
  process.exit(1);
};

if (kind === 'tcp') {
  const [host, port, timeout] = rest;
  const sock = net.connect({ host: host!, port: Number(port) });
  sock.setTimeout(Number(timeout), () => fail(`dial tcp ${host}:${port}: i/o timeout`));
  sock.on('connect', () => {
    sock.destroy();
    process.exit(0);
  });
  sock.on('error', (err) => fail(`dial tcp ${host}:${port}: ${err.message}`));
} else if (kind === 'http') {
  const [url, timeout, ...headerArgs] = rest;
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/ambit' };
  for (const h of headerArgs) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i)] = h.slice(i + 1);
  }
  const req = http.get(url!, { headers, timeout: Number(timeout) }, (res) => {
    res.resume();
    const code = res.statusCode ?? 0;
    if (code >= 200 && code < 400) process.exit(0);
    fail(`HTTP probe failed with statuscode: ${code}`);
  });
  req.on('timeout', () => req.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)')));
  req.on('error', (err) => fail(`Get "${url}": ${err.message}`));
} else {
  fail(`probe: unknown kind ${kind}`);
}

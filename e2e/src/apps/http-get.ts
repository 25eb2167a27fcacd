// curl-like client for cluster-in-a-box pods (image `ambit/client`): `node http-get.js URL [--timeout-ms 5000]`.
// Prints the response body on stdout and `status=<code>` on stderr; exit 0 only for a 2xx answer.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ options: { 'timeout-ms': { type: 'string', default: '5000' } }, allowPositionals: true });
const url = positionals[0];
if (!url) {
  process.stderr.write('http-get: usage: http-get URL [--timeout-ms N]\n');
  process.exit(2);
}
const req = http.get(url, { timeout: Number(values['timeout-ms']) }, (res) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    process.stderr.write(`status=${res.statusCode}\n`);
    process.stdout.write(Buffer.concat(chunks), () => process.exit(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 ? 0 : 1));
  });
});
req.on('timeout', () => req.destroy(new Error(`timed out after ${values['timeout-ms']} ms`)));
req.on('error', (err) => {
  process.stderr.write(`http-get: ${err.message}\n`);
  process.exit(1);
});

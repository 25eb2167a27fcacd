// Process entry of ambit-bridge (bin/ambit-bridge). The CNI protocol's inputs are the environment and stdin.
import { runBridgePlugin } from './bridge-plugin.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const result = await runBridgePlugin(process.env, await readStdin());
if (result.stdout) await new Promise<void>((resolve) => process.stdout.write(result.stdout, () => resolve()));
process.exitCode = result.exitCode;

import type { Readable, Writable } from 'node:stream';
import { runCniPlugin } from './plugin.js';

/**
 * Process entry of the CNI plugin, called by bin/ambit-cni with the process's streams and environment (the CNI
 * protocol's inputs are the environment and stdin, so they are read in the bin script, not here). Returns the exit
 * code. Everything this imports must stay light: the runtime starts one process per pod operation.
 */
export interface CniProcessIo {
  env: Readonly<Record<string, string | undefined>>;
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable;
  stderr: Writable;
}

async function readAll(stream: Readable & { isTTY?: boolean }): Promise<string> {
  // A person running `CNI_COMMAND=VERSION ambit-cni` at a terminal has nothing to send; do not wait for it.
  if (stream.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export async function main(io: CniProcessIo): Promise<number> {
  const stdin = await readAll(io.stdin);
  const result = await runCniPlugin({ env: io.env, stdin, writeLog: (line) => { io.stderr.write(line); } });
  if (result.stdout) await new Promise<void>((resolve) => io.stdout.write(result.stdout, () => resolve()));
  return result.exitCode;
}

// Helpers to run the echo apps (apps/echo-server.ts, apps/echo-client.ts) in pods of a topology.
import { fileURLToPath } from 'node:url';
import type { NetnsProcess } from './process.js';
import type { Target, Topology } from './topology.js';

/** Absolute path of a compiled app script in dist/src/apps (run it with process.execPath inside a netns). */
export function appPath(name: 'echo-server' | 'echo-client'): string {
  return fileURLToPath(new URL(`./apps/${name}.js`, import.meta.url));
}

export interface EchoServer {
  process: NetnsProcess;
  port: number;
  /** Connection events the server logged so far (peer it saw, bytes echoed), parsed from its stdout. */
  events(): EchoServerEvent[];
}

export interface EchoServerEvent {
  event: 'listening' | 'connection' | 'close' | 'error';
  peer?: string;
  peerPort?: number;
  local?: string;
  bytes?: number;
  message?: string;
}

export interface EchoClientResult {
  ok: boolean;
  error?: string;
  /** The banner line the server sent, e.g. `AMBIT-ECHO peer=10.0.1.2:40312 local=10.0.2.2:8080`. */
  banner?: string | null;
  /** Source IP the server saw: equals the client pod's IP when the source is preserved. */
  serverSawPeer?: string | null;
  serverSawPeerPort?: number | null;
  serverLocal?: string | null;
  clientLocal?: string | null;
  sentBytes: number;
  receivedBytes: number;
  sentSha?: string;
  receivedSha?: string;
  ms: number;
}

/** Starts the echo server in a pod (or any netns of the topology) and waits until it listens. */
export async function startEchoServer(
  topo: Topology,
  target: Target,
  options: { port?: number; host?: string; banner?: boolean; timeoutMs?: number } = {},
): Promise<EchoServer> {
  const port = options.port ?? 8080;
  const argv = [process.execPath, appPath('echo-server'), '--port', String(port), '--host', options.host ?? '0.0.0.0'];
  if (options.banner === false) argv.push('--no-banner');
  const proc = await topo.spawnIn(target, argv);
  await proc.waitForOutput('"event":"listening"', options.timeoutMs ?? 10_000);
  return {
    process: proc,
    port,
    events: () =>
      proc
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as EchoServerEvent),
  };
}

/** Runs the echo client once in `from` against host:port; returns its report (ok=false on any failure). */
export async function runEchoClient(
  topo: Topology,
  from: Target,
  options: { host: string; port?: number; message?: string; bytes?: number; banner?: boolean; timeoutMs?: number },
): Promise<EchoClientResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const argv = [process.execPath, appPath('echo-client'), '--host', options.host, '--port', String(options.port ?? 8080)];
  argv.push('--timeout-ms', String(timeoutMs));
  if (options.message !== undefined) argv.push('--message', options.message);
  else argv.push('--bytes', String(options.bytes ?? 1024));
  if (options.banner === false) argv.push('--no-banner');
  // The client bounds itself; the exec timeout is a backstop a little later.
  const r = await topo.execIn(from, argv, { timeoutMs: timeoutMs + 5000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as EchoClientResult;
  } catch {
    return { ok: false, error: `echo-client exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`, sentBytes: 0, receivedBytes: 0, ms: 0 };
  }
}

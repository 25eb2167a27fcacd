// Processes inside a network namespace, with their real PIDs.
//
// Why nsenter and not `ip netns exec`: iproute2 6.1's `ip netns exec` can fork, so the PID we hold would be `ip`'s
// and signals would miss the real program (seen in the feasibility prototype). `nsenter --net=PATH -- argv`
// setns()es and then execs argv in the same process, so the child's PID *is* the program's PID. We still verify
// it: /proc/PID/ns/net must become the target netns's inode before spawnInNetns returns.
// (nsenter does not remount /sys like `ip netns exec` does; nothing here reads /sys/class/net.)
//
// Every process is started in its own process group (detached), so kill() reaches the program and anything it
// forked (a `sh -c` wrapper's children, for instance) with one signal to -PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { netnsPath } from './naming.js';
import { isProcessAlive, netnsInode, processNetnsInode, signalPid } from './netns.js';
import { waitFor } from './wait.js';

/** Keeps the last `limit` bytes written to it, so a chatty process cannot exhaust the test's memory. */
export class BoundedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the front because of the limit. */
  dropped = 0;
  constructor(readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }

  toString(): string {
    return this.toBuffer().toString('utf8');
  }
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Added on top of the current environment. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** 'pipe' to write to the process through handle.stdin; default 'ignore'. */
  stdin?: 'ignore' | 'pipe';
  /** Also append stdout and stderr to this file (kept after teardown, for post-mortems). */
  logFile?: string;
  /** Bytes of stdout and of stderr kept in memory; default 1 MiB each. */
  maxBufferBytes?: number;
  /** How long to wait for /proc/PID/ns/net to show the target netns; default 5 s. */
  verifyTimeoutMs?: number;
}

/** A process running inside a network namespace. `pid` is the program's own PID (verified). */
export class NetnsProcess {
  readonly pid: number;
  readonly stdin: Writable | null;
  private readonly out: BoundedBuffer;
  private readonly err: BoundedBuffer;
  private exitStatus: ExitStatus | undefined;
  private readonly exitPromise: Promise<ExitStatus>;
  private readonly log: WriteStream | undefined;

  constructor(
    readonly netns: string,
    readonly argv: readonly string[],
    private readonly child: ChildProcess,
    options: SpawnOptions,
  ) {
    if (child.pid === undefined) throw new Error(`could not spawn ${argv.join(' ')} in ${netns}`);
    this.pid = child.pid;
    this.stdin = child.stdin;
    const limit = options.maxBufferBytes ?? 1 << 20;
    this.out = new BoundedBuffer(limit);
    this.err = new BoundedBuffer(limit);
    this.log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
    child.stdout?.on('data', (c: Buffer) => {
      this.out.push(c);
      this.log?.write(c);
    });
    child.stderr?.on('data', (c: Buffer) => {
      this.err.push(c);
      this.log?.write(c);
    });
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
    child.on('close', () => this.log?.end());
  }

  /** Exit status once the process has exited (Node reaps it, so it does not linger as a zombie). */
  get exited(): ExitStatus | undefined {
    return this.exitStatus;
  }

  /** True while the program (or its process group leader) is still running. */
  get running(): boolean {
    return this.exitStatus === undefined && isProcessAlive(this.pid);
  }

  stdout(): string {
    return this.out.toString();
  }

  stderr(): string {
    return this.err.toString();
  }

  /** Signals the whole process group (the program and whatever it forked). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    signalPid(-this.pid, signal);
    signalPid(this.pid, signal); // in case the program left our group (setsid of its own)
  }

  /** Resolves with the exit status; throws if the process is still running after `timeoutMs`. */
  async waitExit(timeoutMs = 5000): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.describe()} still running after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exitPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once it is gone. */
  async stop(graceMs = 2000): Promise<ExitStatus> {
    if (this.exitStatus) return this.exitStatus;
    this.kill('SIGTERM');
    try {
      return await this.waitExit(graceMs);
    } catch {
      this.kill('SIGKILL');
      return this.waitExit(5000);
    }
  }

  /** Waits until stdout or stderr matches; returns the match. Fails early if the process exits first. */
  async waitForOutput(pattern: RegExp | string, timeoutMs = 5000): Promise<string> {
    return waitFor(
      () => {
        const text = this.stdout() + this.stderr();
        const m = typeof pattern === 'string' ? (text.includes(pattern) ? pattern : null) : text.match(pattern)?.[0];
        if (m) return m;
        if (this.exitStatus) {
          throw new Error(`${this.describe()} exited (${JSON.stringify(this.exitStatus)}) before printing ${pattern}; output: ${text.slice(-2000)}`);
        }
        return undefined;
      },
      { timeoutMs, message: `${pattern} in the output of ${this.describe()}` },
    );
  }

  describe(): string {
    return `pid ${this.pid} [${this.argv.join(' ')}] in netns ${this.netns}`;
  }
}

/**
 * Starts `argv` inside the named network namespace and returns once its PID is verified to be in that netns
 * (or the process has already exited, which a short command may do before we look).
 */
export async function spawnInNetns(netns: string, argv: readonly string[], options: SpawnOptions = {}): Promise<NetnsProcess> {
  if (argv.length === 0) throw new Error('spawnInNetns: empty argv');
  const inode = netnsInode(netns);
  if (inode === undefined) throw new Error(`spawnInNetns: netns ${netns} does not exist`);
  const child = spawn('nsenter', [`--net=${netnsPath(netns)}`, '--', ...argv], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    detached: true,
  });
  // A spawn failure (ENOENT for nsenter) is reported through 'error'; surface it instead of crashing.
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  if (child.pid === undefined) throw await spawnError;
  const proc = new NetnsProcess(netns, argv, child, options);
  await waitFor(
    () => {
      if (proc.exited) return true; // too quick to check; its output and status are still there
      return processNetnsInode(proc.pid) === inode;
    },
    { timeoutMs: options.verifyTimeoutMs ?? 5000, intervalMs: 5, message: `${proc.describe()} to enter its netns` },
  ).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw err;
  });
  return proc;
}

export interface ExecOptions {
  /** Kill the command (its whole process group) after this long; default 10 s. */
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Throw if the exit code is not 0 (the error carries stdout and stderr). */
  check?: boolean;
  /** Bytes of stdout/stderr kept; default 4 MiB. */
  maxBufferBytes?: number;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a short command to completion, bounded by a timeout. Used for `ip` itself and, via nsenter, in a netns. */
export function runCommand(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const { timeoutMs = 10_000, check = false } = options;
  const limit = options.maxBufferBytes ?? 4 << 20;
  const shown = argv.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const out = new BoundedBuffer(limit);
    const err = new BoundedBuffer(limit);
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    if (options.input !== undefined) child.stdin?.end(options.input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) signalPid(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${shown}: ${e.message}`, { cause: e }));
    });
    // 'close' (not 'exit') so all output has been read.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout: out.toString(), stderr: err.toString() };
      if (timedOut) {
        reject(new Error(`${shown}: timed out after ${timeoutMs} ms; stdout: ${result.stdout.slice(-1000)} stderr: ${result.stderr.slice(-1000)}`));
      } else if (check && code !== 0) {
        reject(new Error(`${shown}: exit ${code ?? signal}: ${result.stderr.trim() || result.stdout.trim()}`));
      } else {
        resolve(result);
      }
    });
  });
}

/** Runs a short command inside a netns (via nsenter, so a timeout kill reaches the real program). */
export function execInNetns(netns: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return runCommand(['nsenter', `--net=${netnsPath(netns)}`, '--', ...argv], options);
}

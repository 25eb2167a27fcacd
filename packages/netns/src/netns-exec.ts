// Runs a command inside a network namespace given by path (/proc/PID/ns/net or /var/run/netns/NAME).
// nsenter takes any netns path, where `ip netns exec` takes only names under /var/run/netns.
import { spawn } from 'node:child_process';
import { AmbitError } from '@ambit/api';

/** A command run in a pod's network namespace failed; the message names the netns, the command and its stderr. */
export class NetnsCommandError extends AmbitError {
  readonly netns: string;
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(netns: string, command: string, exitCode: number | null, stderr: string, cause?: unknown) {
    const detail = stderr.trim() || (cause instanceof Error ? cause.message : '');
    super('AMB_ERR_NETNS_COMMAND',
      `\`${command}\` in netns ${netns} failed (exit ${exitCode ?? 'none'})${detail ? `: ${detail}` : ''}`, { cause });
    this.netns = netns;
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

const COMMAND_TIMEOUT_MS = 30_000;

/** Runs argv in the netns, with optional stdin; rejects with NetnsCommandError on a non-zero exit. */
export function runInNetns(netns: string, argv: string[], input?: string): Promise<CommandResult> {
  const command = argv.join(' ');
  return new Promise((resolvePromise, reject) => {
    const child = spawn('nsenter', [`--net=${netns}`, '--', ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: COMMAND_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (err) => reject(new NetnsCommandError(netns, command, null, stderr, err)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise({ stdout, stderr });
      else reject(new NetnsCommandError(netns, command, code, stderr || (signal ? `killed by ${signal}` : '')));
    });
    child.stdin.on('error', () => { /* the child exited early; its exit status reports why */ });
    child.stdin.end(input ?? '');
  });
}

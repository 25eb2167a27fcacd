// Where a command writes and what it reads from its environment; injected so tests run commands in-process.
import { stringify } from 'yaml';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** True when stderr is a terminal (progress lines are rewritten in place). */
  interactive: boolean;
}

export function processIo(env: Readonly<Record<string, string | undefined>>): CliIo {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env,
    interactive: process.stderr.isTTY === true,
  };
}

/** A user-facing failure: printed as `error: <message>` with exit code 1, no stack. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

export type OutputFormat = 'table' | 'json' | 'yaml' | 'short';

export function parseOutputFormat(value: string | undefined, allowed: readonly OutputFormat[], fallback: OutputFormat): OutputFormat {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as OutputFormat;
  throw new CliError(`unknown output format "${value}": use one of ${allowed.join(', ')}`);
}

/** Aligned columns like kubectl's table printer (three spaces between columns). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function formatStructured(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value);
}

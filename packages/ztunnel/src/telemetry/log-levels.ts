import type { Logger } from 'pino';
import { AmbitError } from '@ambit/api';

/**
 * Runtime log levels per component, driven by the admin `/logging` endpoint (spec §7.3, ztunnel's
 * `telemetry::set_level`). pino copies the parent's level into a child when the child is made and never
 * propagates later changes, so changing the root alone would leave every component at its old level. The
 * components' loggers are therefore made here and kept, and a level change is pushed to each of them.
 *
 * Directives use ztunnel's filter syntax: `debug` (the default for every component without its own level),
 * `access=debug` or `access:debug` (one component), comma-joined (`info,access=debug`).
 */

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LEVELS)[number];

export class LogLevelError extends AmbitError {
  constructor(message: string) { super('AMB_ERR_LOG_LEVEL', message); }
}

export interface LogLevels {
  readonly root: Logger;
  /** The logger of a component (`access`, `inbound`, `xds`, ...): `root.child({component})`, made once per name. */
  logger(component: string): Logger;
  /** Applies directives on top of the current ones. Throws LogLevelError (and changes nothing) on bad input. */
  apply(directives: string): void;
  /** Back to the levels at creation. */
  reset(): void;
  /** Current directives, default first: `info,access=debug`. */
  describe(): string;
  /** The level in force for a component (the default level without one). */
  levelOf(component?: string): LogLevelName;
}

export interface LogLevelsOptions {
  readonly root: Logger;
  /** Directives applied at creation (and restored by reset), e.g. from a `LOG_LEVEL`-style setting. */
  readonly initial?: string;
}

interface Directive {
  readonly target?: string;
  readonly level: LogLevelName;
}

function parseLevel(raw: string): LogLevelName {
  const l = raw.trim().toLowerCase();
  // `off` is tracing's word for pino's `silent`; `warning` is a common spelling.
  if (l === 'off') return 'silent';
  if (l === 'warning') return 'warn';
  if ((LEVELS as readonly string[]).includes(l)) return l as LogLevelName;
  throw new LogLevelError(`invalid log level "${raw.trim()}"; expected one of trace|debug|info|warn|error|off`);
}

export function parseLogDirectives(text: string): Directive[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new LogLevelError('no log level given');
  return parts.map((p) => {
    const m = /^([^=:]+)[=:](.*)$/.exec(p);
    if (!m) return { level: parseLevel(p) };
    const target = m[1]!.trim();
    if (target === '') throw new LogLevelError(`invalid log directive "${p}": empty component name`);
    return { target, level: parseLevel(m[2]!) };
  });
}

export function createLogLevels(options: LogLevelsOptions): LogLevels {
  const { root } = options;
  const loggers = new Map<string, Logger>();
  const startDefault = parseLevel(root.level);
  let defaultLevel: LogLevelName = startDefault;
  const targets = new Map<string, LogLevelName>();

  const levelOf = (component?: string): LogLevelName =>
    (component !== undefined ? targets.get(component) : undefined) ?? defaultLevel;

  const push = (): void => {
    root.level = defaultLevel;
    for (const [name, l] of loggers) l.level = levelOf(name);
  };

  const applyParsed = (directives: readonly Directive[]): void => {
    for (const d of directives) {
      if (d.target === undefined) defaultLevel = d.level;
      else targets.set(d.target, d.level);
    }
    push();
  };

  const initial = options.initial ? parseLogDirectives(options.initial) : [];
  applyParsed(initial);

  return {
    root,
    logger(component) {
      let l = loggers.get(component);
      if (!l) {
        l = root.child({ component });
        l.level = levelOf(component);
        loggers.set(component, l);
      }
      return l;
    },
    apply(text) {
      applyParsed(parseLogDirectives(text));
    },
    reset() {
      defaultLevel = startDefault;
      targets.clear();
      applyParsed(initial);
    },
    describe() {
      const toText = (l: LogLevelName): string => (l === 'silent' ? 'off' : l);
      return [toText(defaultLevel), ...[...targets].sort(([a], [b]) => a.localeCompare(b)).map(([t, l]) => `${t}=${toText(l)}`)].join(',');
    },
    levelOf,
  };
}

import type { CniLogLevel } from './netconf.js';

/**
 * A pino-shaped JSON-lines logger for the plugin. Not pino itself: the plugin is a short process per pod start
 * and only needs to write a few lines to stderr (stdout is reserved for the CNI result), which the runtime
 * shows in its own log when a call fails.
 */
export interface CniLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

// pino's numeric levels, so agent and plugin lines read the same in a log pipeline.
const LEVELS: Record<Exclude<CniLogLevel, 'silent'>, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export function createStderrLogger(options: {
  write: (line: string) => void;
  level: CniLogLevel;
  base?: Record<string, unknown>;
}): CniLogger {
  const threshold = options.level === 'silent' ? Infinity : LEVELS[options.level];
  const at = (name: keyof typeof LEVELS) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[name] < threshold) return;
    options.write(JSON.stringify({ level: LEVELS[name], time: Date.now(), name: 'ambit-cni', ...options.base, ...fields, msg }) + '\n');
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

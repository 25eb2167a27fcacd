// Field-level checks shared by every kind: durations, RE2 regular expressions, host names, labels, IPs, ports.
// Each returns undefined when the value is fine, else a sentence describing the problem (the caller adds the path).
import { isIP } from 'node:net';

// ---- durations -----------------------------------------------------------------------------------------------

const DURATION_UNITS_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const DURATION_PART = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a duration the way Istio's CRDs read them (Go/CEL duration syntax: `1s`, `100ms`, `1.5s`, `1h30m`).
 * Returns nanoseconds, or undefined when the text is not a duration. A leading `-` gives a negative value.
 */
export function parseDuration(text: string): number | undefined {
  let s = text.trim();
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    DURATION_PART.lastIndex = pos;
    const m = DURATION_PART.exec(s);
    if (!m || m.index !== pos) return undefined;
    const num = m[1]!;
    if (num === '' || num === '.') return undefined;
    total += Number(num) * DURATION_UNITS_NS[m[2]!]!;
    pos = DURATION_PART.lastIndex;
  }
  return sign * total;
}

/** Formats nanoseconds for messages (`1.5s`, `100ms`, `250ns`). */
export function formatDuration(ns: number): string {
  if (Math.abs(ns) >= 1e9) return `${ns / 1e9}s`;
  if (Math.abs(ns) >= 1e6) return `${ns / 1e6}ms`;
  if (Math.abs(ns) >= 1e3) return `${ns / 1e3}us`;
  return `${ns}ns`;
}

/**
 * Istio's ValidateDuration: a duration of at least 1ms with millisecond precision. `allowZero` for fields where
 * `0s` means "disabled" (HTTP route timeout, TCP idle timeout).
 */
export function checkDuration(v: string, options: { allowZero?: boolean } = {}): string | undefined {
  const ns = parseDuration(v);
  if (ns === undefined) return `invalid duration ${JSON.stringify(v)}; use a number with a unit, e.g. "1s", "100ms", "1.5s", "1m"`;
  if (ns === 0 && options.allowZero) return undefined;
  if (ns < 1e6) return `duration must be at least 1ms, got ${JSON.stringify(v)}`;
  if (Math.round(ns) % 1e6 !== 0) return `only durations to millisecond precision are supported, got ${JSON.stringify(v)}`;
  return undefined;
}

// ---- RE2 regular expressions -----------------------------------------------------------------------------------

const RE2_ESCAPE_LETTERS = new Set('aftnrvxdDsSwWbBAzpPQ'.split(''));
const RE2_FLAGS = new Set('imsU'.split(''));
const POSIX_CLASSES = new Set(['alnum', 'alpha', 'ascii', 'blank', 'cntrl', 'digit', 'graph', 'lower', 'print', 'punct', 'space', 'upper', 'word', 'xdigit']);
/** Envoy's default re2 program-size limit is approximated, as Istio does, by the pattern length. */
export const MAX_REGEX_LENGTH = 1024;

/**
 * Checks a pattern against RE2 syntax (what Envoy and our waypoint compile): the features users bring from PCRE
 * or JavaScript and RE2 refuses are named (lookahead/lookbehind, backreferences, possessive quantifiers, atomic
 * groups, conditionals), and structure is checked (groups, classes, escapes, repetition counts).
 * Returns undefined when the pattern is valid RE2.
 */
export function checkRe2(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`;
  const fail = (what: string, at: number): string =>
    `${what} at offset ${at} in ${JSON.stringify(pattern)}; RE2 syntax is required (https://github.com/google/re2/wiki/Syntax)`;
  let depth = 0;
  // Whether the previous token can take a repetition operator, and whether it already is a repetition.
  let repeatable = false;
  let repeated = false;
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i]!;
    if (c === '\\') {
      const r = readEscape(pattern, i, false);
      if (typeof r === 'string') return fail(r, i);
      i = r.next;
      repeatable = r.atom;
      repeated = false;
      continue;
    }
    if (c === '[') {
      const r = readClass(pattern, i);
      if (typeof r === 'string') return fail(r, i);
      i = r;
      repeatable = true;
      repeated = false;
      continue;
    }
    if (c === '(') {
      if (pattern[i + 1] === '?') {
        const rest = pattern.slice(i + 2);
        if (rest.startsWith('=') || rest.startsWith('!')) return fail('lookahead (?= / (?! is not supported', i);
        if (rest.startsWith('<=') || rest.startsWith('<!')) return fail('lookbehind (?<= / (?<! is not supported', i);
        if (rest.startsWith('>')) return fail('atomic group (?> is not supported', i);
        if (rest.startsWith('(')) return fail('conditional (?( is not supported', i);
        if (rest.startsWith('#')) return fail('comment group (?# is not supported', i);
        const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
        if (named) {
          i += 2 + named[0].length;
          depth++;
          repeatable = false;
          repeated = false;
          continue;
        }
        if (rest.startsWith('P=') || rest.startsWith('P>') || rest.startsWith('&')) return fail('backreference or recursion is not supported', i);
        // Flags: (?flags) or (?flags:re), flags from imsU with an optional single '-'.
        let j = i + 2;
        let sawMinus = false;
        let sawFlag = false;
        while (j < n && (RE2_FLAGS.has(pattern[j]!) || (pattern[j] === '-' && !sawMinus))) {
          if (pattern[j] === '-') sawMinus = true;
          else sawFlag = true;
          j++;
        }
        if (pattern[j] === ')' && sawFlag) {
          i = j + 1;
          repeatable = false;
          repeated = false;
          continue;
        }
        if (pattern[j] === ':' && (sawFlag || !sawMinus)) {
          i = j + 1;
          depth++;
          repeatable = false;
          repeated = false;
          continue;
        }
        return fail('invalid or unsupported group flags', i);
      }
      depth++;
      i++;
      repeatable = false;
      repeated = false;
      continue;
    }
    if (c === ')') {
      if (depth === 0) return fail('unexpected )', i);
      depth--;
      i++;
      repeatable = true;
      repeated = false;
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || (c === '{' && /^\{\d+(,\d*)?\}/.test(pattern.slice(i)))) {
      let end = i + 1;
      if (c === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i))!;
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (min > 1000 || (max !== Infinity && max > 1000)) return fail('repeat count above 1000', i);
        if (max < min) return fail(`invalid repeat count ${m[0]}`, i);
        end = i + m[0].length;
      }
      if (!repeatable) return fail(`missing argument to repetition operator ${c}`, i);
      if (repeated) return fail('invalid nested repetition operator', i);
      // Lazy suffix is fine in RE2; a possessive '+' suffix is not.
      if (pattern[end] === '+') return fail('possessive quantifier is not supported', end);
      if (pattern[end] === '?') end++;
      i = end;
      repeated = true;
      continue;
    }
    // Any other character (including '.', '^', '$', '|', a literal '{') is an atom or an anchor.
    repeatable = c !== '|';
    repeated = false;
    i++;
  }
  if (depth > 0) return fail('missing closing )', n);
  return undefined;
}

/** Reads one escape; `next` is the index after it, `atom` whether it matches a character (can be repeated). */
function readEscape(p: string, i: number, inClass: boolean): { next: number; atom: boolean } | string {
  const e = p[i + 1];
  if (e === undefined) return 'trailing backslash';
  if (e >= '1' && e <= '9') {
    // RE2 (like Go) reads \1..\7 followed by more octal digits as an octal escape; alone it is a backreference.
    if (e <= '7' && p[i + 2] !== undefined && p[i + 2]! >= '0' && p[i + 2]! <= '7') {
      let j = i + 2;
      while (j < i + 4 && p[j] !== undefined && p[j]! >= '0' && p[j]! <= '7') j++;
      return { next: j, atom: true };
    }
    return `backreference \\${e} is not supported`;
  }
  if (e === '0') {
    let j = i + 2;
    while (j < i + 4 && p[j] !== undefined && p[j]! >= '0' && p[j]! <= '7') j++;
    return { next: j, atom: true };
  }
  if (e === 'k') return 'named backreference \\k is not supported';
  if (e === 'x') {
    if (p[i + 2] === '{') {
      const close = p.indexOf('}', i + 3);
      if (close < 0 || !/^[0-9A-Fa-f]+$/.test(p.slice(i + 3, close))) return 'invalid \\x{...} escape';
      return { next: close + 1, atom: true };
    }
    if (!/^[0-9A-Fa-f]{2}$/.test(p.slice(i + 2, i + 4))) return 'invalid \\x escape';
    return { next: i + 4, atom: true };
  }
  if (e === 'p' || e === 'P') {
    if (p[i + 2] === '{') {
      const close = p.indexOf('}', i + 3);
      if (close < 0) return 'unterminated \\p{...}';
      return { next: close + 1, atom: true };
    }
    if (p[i + 2] === undefined) return 'invalid \\p escape';
    return { next: i + 3, atom: true };
  }
  if (e === 'Q') {
    if (inClass) return '\\Q inside a character class';
    const end = p.indexOf('\\E', i + 2);
    return { next: end < 0 ? p.length : end + 2, atom: true };
  }
  if (/[A-Za-z]/.test(e)) {
    if (!RE2_ESCAPE_LETTERS.has(e) || e === 'Q') return `invalid escape sequence \\${e}`;
    if (inClass && (e === 'b' || e === 'B' || e === 'A' || e === 'z')) return `invalid escape \\${e} in a character class`;
    return { next: i + 2, atom: !(e === 'b' || e === 'B' || e === 'A' || e === 'z') };
  }
  // Escaped punctuation (or any non-word character) is a literal.
  if (/[0-9A-Za-z_]/.test(e)) return `invalid escape sequence \\${e}`;
  return { next: i + 2, atom: true };
}

/** Reads a character class starting at p[i] === '['; returns the index after its closing ']'. */
function readClass(p: string, i: number): number | string {
  let j = i + 1;
  if (p[j] === '^') j++;
  let first = true;
  while (j < p.length) {
    const c = p[j]!;
    if (c === ']' && !first) return j + 1;
    first = false;
    if (c === '[' && p[j + 1] === ':') {
      const close = p.indexOf(':]', j + 2);
      if (close < 0) return 'unterminated [: character class';
      const name = p.slice(j + 2, close).replace(/^\^/, '');
      if (!POSIX_CLASSES.has(name)) return `invalid character class range [:${name}:]`;
      j = close + 2;
      continue;
    }
    if (c === '\\') {
      const r = readEscape(p, j, true);
      if (typeof r === 'string') return r;
      j = r.next;
      continue;
    }
    j++;
  }
  return 'missing closing ]';
}

// ---- names, hosts, labels -------------------------------------------------------------------------------------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_ANY_CASE = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/** Kubernetes DNS-1123 label (lower case, 63 characters): names of subsets, ports, namespaces. */
export function checkDns1123Label(v: string): string | undefined {
  if (v.length === 0) return 'must not be empty';
  if (v.length > 63 || !DNS1123_LABEL.test(v)) return `${JSON.stringify(v)} is not a valid DNS-1123 label (lower case letters, digits and '-', at most 63 characters)`;
  return undefined;
}

/** A fully qualified name without wildcards (`api.example.com`). */
export function checkFqdn(v: string): string | undefined {
  const host = v.endsWith('.') ? v.slice(0, -1) : v;
  if (host.length === 0) return 'host must not be empty';
  if (host.length > 255) return `host ${JSON.stringify(v)} is too long (max 255)`;
  for (const label of host.split('.')) {
    if (label.length > 63 || !DNS_LABEL_ANY_CASE.test(label)) return `host ${JSON.stringify(v)} is not a valid domain name (label ${JSON.stringify(label)})`;
  }
  return undefined;
}

/** Istio's ValidateWildcardDomain: a domain name that may start with `*` or `*.` (`*`, `*.example.com`). */
export function checkWildcardDomain(v: string): string | undefined {
  if (v.length === 0) return 'host must not be empty';
  if (v.length > 255) return `host ${JSON.stringify(v)} is too long (max 255)`;
  if (v === '*') return undefined;
  let rest = v;
  if (rest.startsWith('*.')) rest = rest.slice(2);
  else if (rest.startsWith('*')) rest = rest.slice(1);
  if (rest.includes('*')) return `host ${JSON.stringify(v)} may only have a wildcard as its first label ("*.example.com")`;
  return checkFqdn(rest);
}

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** A Kubernetes label key (`app`, `example.com/tier`). */
export function checkLabelKey(k: string): string | undefined {
  if (k.length === 0) return 'label key must not be empty';
  const slash = k.indexOf('/');
  const [prefix, name] = slash < 0 ? [undefined, k] : [k.slice(0, slash), k.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || checkFqdn(prefix) !== undefined)) return `label key ${JSON.stringify(k)} has an invalid prefix`;
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) return `label key ${JSON.stringify(k)} is invalid (alphanumerics, '-', '_' or '.', at most 63 characters)`;
  return undefined;
}

/** A Kubernetes label value (may be empty). */
export function checkLabelValue(v: string): string | undefined {
  if (v === '') return undefined;
  if (v.length > 63 || !LABEL_NAME.test(v)) return `label value ${JSON.stringify(v)} is invalid (alphanumerics, '-', '_' or '.', at most 63 characters)`;
  return undefined;
}

export function checkPort(n: number): string | undefined {
  if (!Number.isInteger(n) || n < 1 || n > 65535) return `port number ${n} must be in the range 1..65535`;
  return undefined;
}

/** An IP address or a CIDR (`10.0.0.1`, `10.0.0.0/16`, `2001:db8::/32`). */
export function checkIpOrCidr(v: string): string | undefined {
  const slash = v.indexOf('/');
  if (slash < 0) return isIP(v) ? undefined : `${JSON.stringify(v)} is not a valid IP address or CIDR`;
  const ip = v.slice(0, slash);
  const len = v.slice(slash + 1);
  const family = isIP(ip);
  if (!family || !/^\d{1,3}$/.test(len) || Number(len) > (family === 4 ? 32 : 128)) return `${JSON.stringify(v)} is not a valid CIDR`;
  return undefined;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An HTTP header name (RFC 7230 token). Istio also accepts the HTTP/2 pseudo-headers in matches. */
export function checkHeaderName(name: string, options: { pseudo?: boolean } = {}): string | undefined {
  if (name.length === 0) return 'header name must not be empty';
  if (options.pseudo && [':method', ':scheme', ':authority', ':path'].includes(name)) return undefined;
  if (!TCHAR.test(name)) return `header name ${JSON.stringify(name)} is not a valid header name`;
  return undefined;
}

/** Protocol names Istio recognises on ports (case-insensitive; empty means "detect"). */
export const PORT_PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB', 'TCP', 'TLS', 'UDP', 'MONGO', 'REDIS', 'MYSQL', 'HBONE'] as const;

export function checkProtocol(p: string): string | undefined {
  if (p === '' || (PORT_PROTOCOLS as readonly string[]).includes(p.toUpperCase())) return undefined;
  return `unsupported protocol ${JSON.stringify(p)}; must be one of ${PORT_PROTOCOLS.join(', ')}`;
}

export function isHttpProtocol(p: string): boolean {
  return ['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB'].includes(p.toUpperCase());
}

export function isTlsProtocol(p: string): boolean {
  return ['HTTPS', 'TLS'].includes(p.toUpperCase());
}

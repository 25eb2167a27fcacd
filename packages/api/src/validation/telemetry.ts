// telemetry.istio.io Telemetry: attachment, providers, tracing sampling and tags, metric overrides, access-log filters.
import { Checker, type Json } from './checker.js';
import { policyAttachment } from './common.js';

const METRICS = ['ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES'] as const;
const MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;

export function validateTelemetry(c: Checker, spec: Json): void {
  policyAttachment(c, spec);
  for (const { item, path } of c.objects('spec.metrics', spec.metrics)) {
    providers(c, `${path}.providers`, item.providers);
    for (const o of c.objects(`${path}.overrides`, item.overrides)) {
      const match = c.object(`${o.path}.match`, o.item.match);
      if (match) {
        c.enumValue(`${o.path}.match.mode`, match.mode, MODES);
        if (match.metric !== undefined && match.customMetric !== undefined) c.error(`${o.path}.match`, 'only one of metric or customMetric may be set');
        c.enumValue(`${o.path}.match.metric`, match.metric, METRICS);
        if (match.customMetric !== undefined && !c.string(`${o.path}.match.customMetric`, match.customMetric)) c.error(`${o.path}.match.customMetric`, 'customMetric may not be empty');
      }
      c.boolean(`${o.path}.disabled`, o.item.disabled);
      const tags = c.object(`${o.path}.tagOverrides`, o.item.tagOverrides);
      for (const [name, v] of Object.entries(tags ?? {})) {
        const p = `${o.path}.tagOverrides[${JSON.stringify(name)}]`;
        if (name === '') c.warn(p, 'tagOverrides name may not be empty');
        if (v === null || v === undefined) {
          c.error(p, 'tagOverrides may not be null');
          continue;
        }
        const t = c.object(p, v);
        if (!t) continue;
        const op = c.enumValue(`${p}.operation`, t.operation, ['UPSERT', 'REMOVE']) ?? 'UPSERT';
        const value = c.string(`${p}.value`, t.value) ?? '';
        if (op === 'UPSERT' && value === '') c.error(`${p}.value`, 'tagOverrides.value must be set when operation is UPSERT');
        if (op === 'REMOVE' && value !== '') c.error(`${p}.value`, 'tagOverrides.value may only be set when operation is UPSERT');
      }
    }
    if (item.reportingInterval !== undefined) {
      const s = c.string(`${path}.reportingInterval`, item.reportingInterval);
      if (s !== undefined && !/^\d+(\.\d+)?(ms|s|m|h)$/.test(s)) c.error(`${path}.reportingInterval`, `invalid duration ${JSON.stringify(s)}`);
    }
  }
  const tracing = c.objects('spec.tracing', spec.tracing);
  if (tracing.length > 1) c.warn('spec.tracing', 'multiple tracing is not currently supported');
  for (const { item, path } of tracing) {
    const ps = providers(c, `${path}.providers`, item.providers);
    if (ps > 1) c.warn(`${path}.providers`, 'multiple providers is not currently supported');
    const pct = c.wrapped(`${path}.randomSamplingPercentage`, item.randomSamplingPercentage);
    if (pct !== undefined && (pct < 0 || pct > 100)) c.error(`${path}.randomSamplingPercentage`, `randomSamplingPercentage must be in range [0.0, 100.0], got ${pct}`);
    c.boolean(`${path}.disableSpanReporting`, item.disableSpanReporting);
    const tags = c.object(`${path}.customTags`, item.customTags);
    for (const [name, v] of Object.entries(tags ?? {})) {
      const p = `${path}.customTags[${JSON.stringify(name)}]`;
      if (name === '') c.error(p, 'tag name may not be empty');
      const t = c.object(p, v);
      if (!t) {
        if (v === null || v === undefined) c.error(p, `tag '${name}' may not have a nil value`);
        continue;
      }
      const kinds = ['literal', 'environment', 'header'].filter((k) => t[k] !== undefined);
      if (kinds.length !== 1) c.error(p, 'exactly one of literal, environment or header must be set');
      const lit = c.object(`${p}.literal`, t.literal);
      if (lit && !c.string(`${p}.literal.value`, lit.value)) c.error(`${p}.literal.value`, 'literal tag value may not be empty');
      const env = c.object(`${p}.environment`, t.environment);
      if (env && !c.string(`${p}.environment.name`, env.name)) c.error(`${p}.environment.name`, 'environment tag name may not be empty');
      const hdr = c.object(`${p}.header`, t.header);
      if (hdr && !c.string(`${p}.header.name`, hdr.name)) c.error(`${p}.header.name`, 'header tag name may not be empty');
    }
    const match = c.object(`${path}.match`, item.match);
    if (match) c.enumValue(`${path}.match.mode`, match.mode, MODES);
  }
  for (const { item, path } of c.objects('spec.accessLogging', spec.accessLogging)) {
    providers(c, `${path}.providers`, item.providers);
    c.boolean(`${path}.disabled`, item.disabled);
    const filter = c.object(`${path}.filter`, item.filter);
    if (filter && !c.string(`${path}.filter.expression`, filter.expression)) c.error(`${path}.filter.expression`, 'filter expression must not be empty');
    const match = c.object(`${path}.match`, item.match);
    if (match) c.enumValue(`${path}.match.mode`, match.mode, MODES);
  }
}

function providers(c: Checker, path: string, v: unknown): number {
  const list = c.array(path, v);
  list.forEach((p, i) => {
    const o = c.object(`${path}[${i}]`, p);
    if (!o || !c.string(`${path}[${i}].name`, o.name)) c.error(`${path}[${i}].name`, 'providers.name may not be empty');
  });
  return list.length;
}

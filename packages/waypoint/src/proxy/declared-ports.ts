// Ports whose protocol the user declared opaque (Service port `appProtocol`/name, ServiceEntry port `protocol`: tcp,
// tls, https, mongo, mysql, redis): the waypoint proxies them as bytes at once, without waiting for the client to
// speak first. Rebuilt when the configuration changes; looked up once per connection.
import { declaredServiceEntryPortProtocol, declaredServicePortProtocol, isOpaqueProtocol, type KubeObject } from '@ambit/api';
import type { ConfigStore } from '../state/config-store.js';

export interface DeclaredPorts {
  /** Did the service `hostname` of `namespace` declare `port` an opaque protocol? */
  isOpaque(namespace: string, hostname: string, port: number): boolean;
}

export function createDeclaredPorts(routes: ConfigStore, domainSuffix: string): DeclaredPorts {
  let table = build(routes.objects().values(), domainSuffix);
  routes.onChange((_config, objects) => { table = build(objects.values(), domainSuffix); });
  return { isOpaque: (namespace, hostname, port) => table.get(`${namespace}/${hostname}`)?.has(port) ?? false };
}

function build(objects: Iterable<KubeObject>, domainSuffix: string): Map<string, Set<number>> {
  const table = new Map<string, Set<number>>();
  const add = (key: string, port: unknown): void => {
    if (typeof port !== 'number') return;
    let set = table.get(key);
    if (!set) table.set(key, (set = new Set()));
    set.add(port);
  };
  for (const o of objects) {
    const ns = o.metadata.namespace ?? 'default';
    const ports = (Array.isArray(o.spec?.ports) ? o.spec.ports : []) as Record<string, unknown>[];
    if (o.kind === 'Service') {
      const host = `${o.metadata.name}.${ns}.svc.${domainSuffix}`;
      for (const p of ports) {
        if (isOpaqueProtocol(declaredServicePortProtocol(p as { name?: string; appProtocol?: string }))) add(`${ns}/${host}`, p.port);
      }
    } else if (o.kind === 'ServiceEntry') {
      const hosts = (Array.isArray(o.spec?.hosts) ? o.spec.hosts : []) as unknown[];
      for (const p of ports) {
        if (!isOpaqueProtocol(declaredServiceEntryPortProtocol(p as { protocol?: string }))) continue;
        for (const h of hosts) if (typeof h === 'string') add(`${ns}/${h}`, p.number);
      }
    }
  }
  return table;
}

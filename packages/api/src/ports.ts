/** Istio ambient's well-known ports (spec §1.1). Each is defined here once. */
export const PORTS = Object.freeze({
  /** Outbound capture inside the pod netns (iptables REDIRECT target). */
  outbound: 15001,
  /** Inbound plaintext capture inside the pod netns. */
  inboundPlaintext: 15006,
  /** Inbound HBONE (mTLS + HTTP/2 CONNECT); peers dial podIP:15008 directly. */
  hbone: 15008,
  /** DNS proxy, localhost inside the pod netns. */
  dns: 15053,
  /** Admin, localhost only: /config_dump, /logging, /quitquitquit. */
  admin: 15000,
  /** Prometheus /metrics and /stats/prometheus. */
  metrics: 15020,
  /** Readiness GET /healthz/ready. */
  readiness: 15021,
  /** Controller: delta xDS and CA over TLS. */
  xds: 15012,
} as const);

/**
 * Ports that must never be the resolved target of an HBONE CONNECT nor an outbound destination on loopback:
 * a connection there would loop back into the agent itself (ztunnel's "illegal ports").
 */
export const ILLEGAL_TARGET_PORTS: ReadonlySet<number> = new Set([PORTS.outbound, PORTS.inboundPlaintext, PORTS.hbone]);

/** Socket mark carried by every agent socket so that the pod's redirection rules skip it (0x539 = 1337). */
export const AGENT_SOCKET_MARK = 0x539;
/** Mark set by TPROXY on inbound-captured packets and restored on replies (connmark). */
export const INBOUND_TPROXY_MARK = 0x111;
/** Mask applied to both marks. */
export const MARK_MASK = 0xfff;
/** Routing table used for TPROXY local delivery inside the pod. */
export const TPROXY_ROUTE_TABLE = 133;
/** Kubelet probes are SNATed to this link-local address by the node rules; the pod rules accept it uncaptured. */
export const KUBELET_PROBE_SNAT_IPV4 = '169.254.7.127';
export const KUBELET_PROBE_SNAT_IPV6 = 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff';

export { HboneClient } from './client.js';
export type { ConnectRequest, Endpoint, HboneClientOptions, HboneTunnel } from './client.js';
export { HboneServer } from './server.js';
export type { HboneRequest, HboneServerOptions } from './server.js';
export { splice } from './splice.js';
export type { SpliceResult } from './splice.js';
export { HboneError } from './errors.js';
export type { HboneErrorCode } from './errors.js';
export {
  formatAuthority, parseAuthority, formatBaggage, parseBaggage, formatForwarded, parseForwarded, newTraceparent, parseTraceparent,
} from './headers.js';
export type { Authority, BaggageFacts } from './headers.js';
export { H2_DEFAULTS, HBONE_ALPN, HBONE_CIPHERS, secureContextOptions } from './tls-options.js';
export type { Credentials } from './tls-options.js';

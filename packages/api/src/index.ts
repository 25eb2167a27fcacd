export * from './ports.js';
export * from './labels.js';
export * from './headers.js';
export * from './metrics.js';
export * from './identity.js';
export * from './errors.js';
export * from './proto.js';
export * from './config-objects.js';

export * from './stats.js';
export { handleBenchConnection } from './bench-app.js';

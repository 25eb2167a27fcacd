export * from './stats.js';
export { handleBenchConnection } from './bench-app.js';
export { runRequestResponse, type RequestResponseOptions, type RequestResponseResult } from './request-response.js';

/**
 * The metrics listener lives in src/metrics-server.ts, outside the HTTP layer, so the worker entry point
 * (src/worker.ts) can serve it too; this name stays for the API's entry points and the tests.
 */
export { startMetricsServer, type MetricsServer, type MetricsSource } from '../metrics-server.js';

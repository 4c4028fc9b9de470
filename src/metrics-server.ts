import { createServer, type Server } from 'node:http';
import { metrics } from './metrics.js';

export interface MetricsServer {
  server: Server;
  /** The address actually bound (METRICS_PORT=0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/**
 * Prometheus metrics (`GET /metrics`) on a listener of their own (METRICS_PORT, on HOST), apart from the API
 * (src/main.ts) — and in a worker process (src/worker.ts), whose batch and SLA counters live there:
 * the API's port is what a reverse proxy publishes, so checking the socket address there protected nothing
 * behind a proxy on the same machine. Scrapers reach this port; the proxy never forwards to it. The counts carry
 * no identifiers, but they are operational data. Anything but GET/HEAD /metrics is a 404 (405 for other methods).
 */
/** What the listener serves: this process's registry, or another rendering (node:cluster's aggregate). */
export interface MetricsSource {
  render(): Promise<string>;
  contentType: string;
}

const ownRegistry: MetricsSource = { render: () => metrics.metrics(), contentType: metrics.contentType };

export async function startMetricsServer(port: number, host: string, source: MetricsSource = ownRegistry): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'application/json', Allow: 'GET, HEAD' }).end('{"error":"method_not_allowed"}');
      return;
    }
    source.render().then(
      (text) => res.writeHead(200, { 'Content-Type': source.contentType }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"error":"metrics_unavailable"}'),
    );
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

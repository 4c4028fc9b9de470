import cluster from 'node:cluster';
import { announceClusterWorker, isClusterWorker, runClusterPrimary, runsQueueWorkersInCluster } from './cluster.js';
import { loadConfigOrExit, type Config } from './config.js';
import { startMetricsServer } from './http/metrics-server.js';
import { createLogger, type Logger } from './logger.js';
import { startService } from './service.js';
import { runUntilStopped, type Stoppable } from './shutdown.js';
import { startWorkers } from './workers.js';

/**
 * API server entry point, with the queue workers in-process unless RUN_WORKERS=false, and the Prometheus
 * metrics on METRICS_PORT. Run by Node itself (`npm start` execs `node --import tsx src/main.ts`; the image runs
 * `node dist/src/main.js`), so SIGTERM and SIGINT reach this process: it stops accepting connections, lets
 * in-flight requests and jobs finish, closes its pools and exits 0 (1 if that takes longer than 10 s).
 *
 * With WEB_CONCURRENCY > 1 this process becomes a `node:cluster` primary that forks that many API processes on
 * the same port (src/cluster.ts): the queue workers run in the first of them only, and the primary alone
 * serves the metrics port, summing theirs.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  if (cluster.isPrimary && config.webConcurrency > 1) {
    await runClusterPrimary(config, logger, config.webConcurrency);
    return;
  }
  await runUntilStopped(logger, () => start(config, logger));
}

async function start(config: Config, logger: Logger): Promise<Stoppable> {
  const inCluster = isClusterWorker();
  const service = await startService(config, logger);
  const metricsServer = inCluster || config.metricsPort === undefined ? undefined : await startMetricsServer(config.metricsPort, config.host);
  const runWorkers = config.runWorkers && (!inCluster || runsQueueWorkersInCluster());
  if (!inCluster) {
    logger.info(
      { url: service.url, tlsUrl: service.tlsUrl, metricsUrl: metricsServer && `${metricsServer.url}/metrics`, fhirBase: config.fhirBaseUrl },
      'member-match listening',
    );
  }
  const workers = runWorkers ? await startWorkers(config, service.deps.db, logger) : undefined;
  if (inCluster) {
    // The primary logs `member-match listening` once every API process is.
    logger.info({ url: service.url, tlsUrl: service.tlsUrl, pid: process.pid, queueWorkers: runWorkers }, 'API process listening');
    announceClusterWorker(service.url, service.tlsUrl);
  }
  return {
    async stop() {
      await workers?.stop();
      await service.close();
      await metricsServer?.close();
    },
  };
}

main().catch((error: unknown) => {
  const e = error as { name?: string; code?: string; message?: string };
  // Start-up errors (database unreachable, port taken) carry no PHI; say what failed.
  console.error(`member-match failed to start: ${e?.name ?? 'Error'} ${e?.code ?? ''} ${e?.message ?? ''}`);
  process.exit(1);
});

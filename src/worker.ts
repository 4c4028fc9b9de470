import { startAuditSealer } from './audit/sealer.js';
import { loadConfigOrExit, type Config } from './config.js';
import { openRuntimeDatabase } from './db/database.js';
import { createLogger, type Logger } from './logger.js';
import { startMetricsServer } from './metrics-server.js';
import { runUntilStopped, type Stoppable } from './shutdown.js';
import { startWorkers } from './workers.js';

/**
 * Queue-worker entry point (`npm run start:worker`, which execs Node on this file), for running workers apart
 * from the API. `npm start` runs the same workers inside the API process unless RUN_WORKERS=false. On SIGTERM or
 * SIGINT the workers finish the jobs they hold, then the queues and the database pool are closed and it exits.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  await runUntilStopped(logger, () => start(config, logger));
}

async function start(config: Config, logger: Logger): Promise<Stoppable> {
  // As the runtime role, like the API (docs/audit.md): migrated first as the owner unless MIGRATE_ON_START=false.
  // Enough connections for every chunk in flight to run its candidate queries and its write together.
  const db = await openRuntimeDatabase(config, config.batch.concurrency * (config.batch.rowParallelism + 1) + 2);
  const workers = await startWorkers(config, db, logger);
  // The workers' audit events are chained by whichever process seals first: this one too, so a worker-only
  // deployment needs no API process for its trail to be chained.
  const sealer = startAuditSealer(db, logger);
  // The batch and review workers' own counters (rows processed, jobs finished, SLA escalations, decisions of
  // the bulk and roster doors) are scraped here; queue depth and review backlog come from the API processes.
  // A port already taken (an API on the same host with the same METRICS_PORT, a second worker) costs this
  // process its metrics, not its work: it says so and runs on; Prometheus sees the target down.
  const metricsServer =
    config.metricsPort === undefined
      ? undefined
      : await startMetricsServer(config.metricsPort, config.host).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EADDRINUSE') throw error;
          logger.warn({ metricsPort: config.metricsPort }, 'metrics port in use: this worker serves no metrics (set METRICS_PORT)');
          return undefined;
        });
  logger.info({ metricsUrl: metricsServer && `${metricsServer.url}/metrics` }, 'member-match workers running');
  return {
    async stop() {
      await workers.stop();
      await sealer.stop();
      await metricsServer?.close();
      await db.destroy();
    },
  };
}

main().catch((error: unknown) => {
  const e = error as { name?: string; code?: string; message?: string };
  console.error(`member-match workers failed to start: ${e?.name ?? 'Error'} ${e?.code ?? ''} ${e?.message ?? ''}`);
  process.exit(1);
});

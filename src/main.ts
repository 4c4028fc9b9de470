import { loadConfigOrExit } from './config.js';
import { createLogger } from './logger.js';
import { startService } from './service.js';
import { startWorkers } from './workers.js';

/** API server entry point, with the queue workers in-process unless RUN_WORKERS=false: `npm start`. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  const service = await startService(config, logger);
  logger.info({ url: service.url, tlsUrl: service.tlsUrl, fhirBase: config.fhirBaseUrl }, 'member-match listening');
  const workers = config.runWorkers ? await startWorkers(config, service.deps.db, logger) : undefined;

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await workers?.stop();
    await service.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  const e = error as { name?: string; code?: string; message?: string };
  // Start-up errors (database unreachable, port taken) carry no PHI; say what failed.
  console.error(`member-match failed to start: ${e?.name ?? 'Error'} ${e?.code ?? ''} ${e?.message ?? ''}`);
  process.exit(1);
});

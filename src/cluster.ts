import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { metrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';

/**
 * Several API processes on one port (WEB_CONCURRENCY > 1, docs/scaling.md), with `node:cluster`: this process
 * (the primary) serves no requests; it forks WEB_CONCURRENCY API processes running src/main.ts, which all listen
 * on PORT (and TLS_PORT), the primary handing each new connection to one of them in turn.
 *
 * - Start-up: the first process starts alone (it migrates the database and creates the keys a fresh database
 *   lacks), the others once it is listening. When all are, the primary logs `member-match listening`.
 * - Queue workers (RUN_WORKERS=true) run in the first process only, and in its replacement if it dies.
 * - Metrics: the primary alone serves METRICS_PORT, summing the processes' registries (prom-client's
 *   AggregatorRegistry, over IPC); the API processes open no metrics listener, so nothing clashes.
 * - A process that dies after it was listening is replaced after a second; one that dies before it ever
 *   listened stops the whole (a configuration or database problem would only die again).
 * - SIGTERM / SIGINT: each API process is sent SIGTERM and stops gracefully (src/shutdown.ts); the primary exits
 *   0 when all have exited 0, 1 otherwise or if they take longer than its own timeout.
 */

/** Set by the primary in the environment of the one API process that runs the queue workers. */
export const QUEUE_WORKERS_ENV = 'MEMBER_MATCH_CLUSTER_QUEUE_WORKERS';
const LISTENING = 'member-match:listening';
const STOP_TIMEOUT_MS = 12_000;
const RESTART_DELAY_MS = 1_000;

interface ListeningMessage {
  type: typeof LISTENING;
  url: string;
  tlsUrl?: string | undefined;
}

/** Whether this is an API process the primary forked. */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** In an API process the primary forked: whether this one runs the queue workers. */
export function runsQueueWorkersInCluster(): boolean {
  return process.env[QUEUE_WORKERS_ENV] === 'true';
}

/**
 * In an API process the primary forked: offer this process's metrics to the primary's aggregation, tell the
 * primary it is listening, and stop gracefully if the primary goes away (its IPC channel closes).
 */
export function announceClusterWorker(url: string, tlsUrl: string | undefined): void {
  AggregatorRegistry.setRegistries([metrics]);
  // prom-client answers the primary's metric requests only once an AggregatorRegistry has been made here.
  new AggregatorRegistry();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  const message: ListeningMessage = { type: LISTENING, url, tlsUrl };
  process.send?.(message);
}

export async function runClusterPrimary(config: Config, logger: Logger, processes: number): Promise<void> {
  let stopping = false;
  const workers = new Set<Worker>();
  let queueWorker: Worker | undefined;
  const exits = new Map<Worker, Promise<number>>();

  const fork = (runsQueueWorkers: boolean): { worker: Worker; listening: Promise<ListeningMessage> } => {
    const worker = cluster.fork(runsQueueWorkers ? { [QUEUE_WORKERS_ENV]: 'true' } : {});
    workers.add(worker);
    if (runsQueueWorkers) queueWorker = worker;
    let wasListening = false;
    const exited = new Promise<number>((resolve) => {
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        // Killed by the SIGTERM the primary sent while stopping (a process still starting has no graceful
        // handler yet, and has nothing in flight): a clean stop.
        resolve(code ?? (stopping && signal === 'SIGTERM' ? 0 : signal ? 128 : 1));
        if (stopping) return;
        if (!wasListening) return; // start-up failure: handled by whoever awaits `listening`
        logger.error({ pid: worker.process.pid, code, signal }, 'API process died; starting another');
        setTimeout(() => {
          if (stopping) return;
          const next = fork(worker === queueWorker);
          next.listening.catch((error: unknown) => {
            logger.error({ errName: (error as Error).name, message: (error as Error).message }, 'replacement API process failed to start; stopping');
            void stop('SIGTERM', 1);
          });
        }, RESTART_DELAY_MS).unref();
      });
    });
    exits.set(worker, exited);
    const listening = new Promise<ListeningMessage>((resolve, reject) => {
      worker.on('message', (message: ListeningMessage) => {
        if (message?.type !== LISTENING) return;
        wasListening = true;
        resolve(message);
      });
      void exited.then((code) => reject(new Error(`API process ${worker.process.pid} exited (${code}) before it was listening`)));
    });
    listening.catch(() => undefined);
    return { worker, listening };
  };

  let metricsServer: MetricsServer | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (signal: NodeJS.Signals, failed = 0): Promise<void> => {
    if (stopped) return stopped;
    stopping = true;
    logger.info({ signal, processes: workers.size }, 'shutting down');
    setTimeout(() => {
      logger.error({ signal }, `API processes did not stop within ${STOP_TIMEOUT_MS / 1000} s: killing them`);
      for (const worker of workers) worker.process.kill('SIGKILL');
      process.exit(1);
    }, STOP_TIMEOUT_MS).unref();
    stopped = (async () => {
      const pending = [...workers].map((worker) => {
        worker.process.kill('SIGTERM');
        return exits.get(worker)!;
      });
      const codes = await Promise.all(pending);
      await metricsServer?.close();
      const ok = failed === 0 && codes.every((code) => code === 0);
      if (ok) logger.info({ signal }, 'stopped');
      else logger.error({ signal, codes }, 'shutdown failed');
      process.exit(ok ? 0 : 1);
    })();
    return stopped;
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));

  try {
    // Metrics first: they answer (for the processes already listening) as soon as the first API process does.
    metricsServer = config.metricsPort === undefined ? undefined : await startAggregatedMetricsServer(config.metricsPort, config.host);
    const first = fork(config.runWorkers);
    const firstListening = await first.listening;
    const rest = await Promise.all(Array.from({ length: processes - 1 }, () => fork(false).listening));
    if (stopping) return;
    const metricsUrl = metricsServer && `${metricsServer.url}/metrics`;
    logger.info(
      {
        url: firstListening.url,
        tlsUrl: firstListening.tlsUrl,
        metricsUrl,
        fhirBase: config.fhirBaseUrl,
        processes,
        pids: [...workers].map((w) => w.process.pid),
        queueWorkers: config.runWorkers ? 'first API process' : 'none',
        listening: rest.length + 1,
      },
      'member-match listening',
    );
  } catch (error) {
    if (!stopping) {
      const e = error as Error;
      console.error(`member-match failed to start: ${e.name} ${e.message}`);
      await stop('SIGTERM', 1);
    }
  }
}

/** Prometheus metrics of all API processes, summed (prom-client's AggregatorRegistry over IPC), on the one listener. */
function startAggregatedMetricsServer(port: number, host: string): Promise<MetricsServer> {
  const registry = new AggregatorRegistry();
  return startMetricsServer(port, host, { render: () => registry.clusterMetrics(), contentType: registry.contentType });
}

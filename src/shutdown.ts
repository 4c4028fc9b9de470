import type { Logger } from './logger.js';

/** How long a graceful shutdown may take before the process exits anyway (exit code 1). */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Graceful shutdown for the process entry points (src/main.ts, src/worker.ts): on the first SIGTERM or SIGINT,
 * run `stop` (stop accepting work, let in-flight requests and jobs finish, close pools) and exit 0; exit 1 if it
 * fails or takes longer than 10 s. Later signals are ignored: Ctrl-C under `npm start` delivers SIGINT twice
 * (from the terminal, and forwarded by npm), and the second must not cut the first shutdown short.
 */
export function onStopSignal(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ signal }, `shutdown took longer than ${SHUTDOWN_TIMEOUT_MS / 1000} s: exiting`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    stop().then(
      () => {
        logger.info({ signal }, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ signal, errName: (error as Error | undefined)?.name }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

/** What a started process can be asked to do when a stop signal comes. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Runs a process entry point: starts it with the stop handlers in place before anything it starts can announce
 * readiness (a signal sent on seeing "listening" must find the handler, or the default action kills the process
 * ungracefully). A signal during start-up waits for the start to finish, then stops what it started.
 */
export async function runUntilStopped(logger: Logger, start: () => Promise<Stoppable>): Promise<void> {
  // No handler can run between these two statements: a signal is handled on a later turn of the event loop.
  const started = start();
  onStopSignal(logger, async () => (await started).stop());
  await started;
}

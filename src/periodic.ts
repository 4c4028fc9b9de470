import type { Logger } from './logger.js';

/**
 * Runs `work` now and then every `intervalMs` (never two at once) until stopped. A failure is logged once,
 * when it starts, and its recovery once, when it ends; the work is simply tried again on the next tick.
 * `isStopped` lets long work end early when the loop is being stopped.
 */
export function runPeriodically(
  work: (isStopped: () => boolean) => Promise<void>,
  options: { intervalMs: number; logger: Logger; failing: string; recovered: string },
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let failing = false;
  const tick = () => {
    running = (async () => {
      try {
        await work(() => stopped);
        if (failing) options.logger.info(options.recovered);
        failing = false;
      } catch (error) {
        if (!failing) options.logger.warn({ errName: (error as Error).name }, options.failing);
        failing = true;
      }
    })();
  };
  const timer = setInterval(() => void running.then(() => (stopped ? undefined : tick())), options.intervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * A worker process (src/worker.ts) serves its own metrics on METRICS_PORT — the batch counters live where the
 * chunks run — and a port already taken costs it its metrics, not its work.
 */
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

async function runWorker(metricsPort: string): Promise<{ lines: Record<string, unknown>[]; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
    env: { ...process.env, DATABASE_URL: database.url, METRICS_PORT: metricsPort, REDIS_KEY_PREFIX: `mm-test-${randomBytes(6).toString('hex')}:`, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const lines: Record<string, unknown>[] = [];
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      lines.push(parsed);
      if (parsed.msg === 'member-match workers running') resolve();
    });
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it was running`)));
  });
  return {
    lines,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('worker metrics', () => {
  it('are served on the worker’s METRICS_PORT', async () => {
    const worker = await runWorker('0');
    try {
      const { metricsUrl } = worker.lines.find((l) => l.msg === 'member-match workers running') as { metricsUrl: string };
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const text = await (await fetch(metricsUrl)).text();
      expect(text).toContain('# TYPE member_match_batch_rows_total counter');
      expect(text).toContain('# TYPE member_match_batch_jobs_finished_total counter');
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  }, 60_000);

  it('are given up, with a warning, when the port is taken; the worker still runs', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const worker = await runWorker(String(port));
      expect(worker.lines.find((l) => l.msg === 'metrics port in use: this worker serves no metrics (set METRICS_PORT)')).toMatchObject({ metricsPort: port });
      expect(worker.lines.find((l) => l.msg === 'member-match workers running')).not.toHaveProperty('metricsUrl');
      expect(await worker.stop()).toBe(0);
    } finally {
      taken.close();
    }
  }, 60_000);
});

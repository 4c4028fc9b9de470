import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * The two entry points as processes, the way `npm start` / `npm run start:worker` run them (Node itself, with
 * tsx's loader): SIGTERM and SIGINT stop them gracefully — listeners closed, pools released, exit code 0.
 */
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

interface Started {
  child: ChildProcess;
  /** Parsed JSON log lines, as they arrive. */
  lines: Record<string, unknown>[];
  /** The exit code, or the signal that ended the process (`SIGABRT`, …) when it did not exit by itself. */
  exited: Promise<number | string>;
}

async function start(entry: string, readyMessage: string): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      PORT: '0',
      METRICS_PORT: '0',
      REDIS_KEY_PREFIX: `mm-test-${randomBytes(6).toString('hex')}:`,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  const exited = once(child, 'exit').then(([code, signal]) => (code as number | null) ?? (signal as string));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      lines.push(parsed);
      if (parsed.msg === readyMessage) resolve();
    });
    void exited.then((code) => reject(new Error(`${entry} exited (${code}) before it was ready`)));
  });
  await ready;
  return { child, lines, exited };
}

const refused = (url: string) => fetch(url).then(() => false, () => true);

describe('graceful shutdown', () => {
  it('stops the API on SIGTERM: both listeners closed, exit 0; its metrics were on their own port only', async () => {
    const api = await start('src/main.ts', 'member-match listening');
    const listening = api.lines.find((l) => l.msg === 'member-match listening') as { url: string; metricsUrl: string };
    expect((await fetch(`${listening.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${listening.url}/metrics`)).status).toBe(404);
    expect(await (await fetch(listening.metricsUrl)).text()).toContain('member_match_decisions_total');

    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
    expect(api.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
    expect(await refused(`${listening.url}/healthz`)).toBe(true);
    expect(await refused(listening.metricsUrl)).toBe(true);
  }, 60_000);

  it('stops the workers on SIGINT, exit 0', async () => {
    const worker = await start('src/worker.ts', 'member-match workers running');
    worker.child.kill('SIGINT');
    expect(await worker.exited).toBe(0);
    expect(worker.lines.find((l) => l.msg === 'stopped')).toMatchObject({ signal: 'SIGINT' });
  }, 60_000);
});

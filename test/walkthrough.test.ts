/**
 * The README's walk-through, run as written: scripts/walkthrough.sh takes the ```sh blocks under "## Walk-through"
 * from README.md and runs them in order in one shell against a server it starts itself (`DEV_MODE=true npm start`
 * on free ports, a scratch database, its own Redis key prefix), checking each step's output. This test runs the
 * script, and then checks that it ran every step of the README and left nothing behind: its database dropped,
 * its ports closed, its Redis keys gone.
 *
 * Its cost is about 40 CLI calls (each a Node start through tsx, about 1 s of CPU) and one server start: about
 * 55 s of CPU in all, so about a minute on a quiet 2-core machine; measured 78–165 s with the load average at
 * 7–13 (other suites on the same two cores). The limit below is for the latter; on a timeout the script is
 * stopped with SIGTERM and still cleans up.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../src/project-files.js';

const LIMIT_MS = Number(process.env.WALKTHROUGH_TEST_LIMIT_MS ?? 300_000);
const serverUrl = (process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/$/, '');

/** The `### ` headings under the README's "## Walk-through": the steps the script must have run. */
function readmeSteps(): string[] {
  const lines = readFileSync(path.join(projectRoot, 'README.md'), 'utf8').split('\n');
  const steps: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^## /.test(line)) inside = /^## Walk-through\s*$/.test(line);
    else if (inside && line.startsWith('### ')) steps.push(line.slice(4));
  }
  return steps;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

/** Runs the script in a process group of its own, so a timeout can stop it (its trap then cleans up). */
function runWalkthrough(): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(projectRoot, 'scripts', 'walkthrough.sh')], {
      cwd: projectRoot,
      detached: true,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGTERM'); // the script's trap stops the server and drops the database
      } catch {
        /* already gone */
      }
      killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 30_000);
    }, LIMIT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      resolve({ code, signal, output, timedOut });
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('README walk-through', () => {
  it(
    'runs every step, as written, on one server start, and cleans up after itself',
    async () => {
      const steps = readmeSteps();
      expect(steps.length, 'the README has a "## Walk-through" with "### " steps').toBeGreaterThanOrEqual(5);

      const run = await runWalkthrough();
      const summary = `exit ${run.code}${run.signal ? ` (${run.signal})` : ''}${run.timedOut ? `, stopped after ${LIMIT_MS / 1000} s` : ''}\n${run.output}`;
      expect(run.timedOut, summary).toBe(false);
      expect(run.code, summary).toBe(0);

      // Every README step ran, in order, and passed its checks.
      const ran = [...run.output.matchAll(/^step (\d+)\/(\d+): (.*)$/gm)].map((m) => m[3]);
      expect(ran).toEqual(steps);
      expect(run.output).toMatch(new RegExp(`^walkthrough: all ${steps.length} steps passed`, 'm'));
      expect(run.output).not.toMatch(/^\s+NO\s/m);

      // Nothing left behind: the scratch database, the ports, the Redis keys.
      const where = /^walkthrough: server http:\/\/127\.0\.0\.1:(\d+) \(metrics :(\d+)\), database (\S+), Redis prefix (\S+),/m.exec(run.output);
      expect(where, summary).not.toBeNull();
      const [, port, metricsPort, database, prefix] = where!;
      const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
      await client.connect();
      try {
        const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
        expect(found.rowCount, `database ${database} was dropped`).toBe(0);
      } finally {
        await client.end();
      }
      expect(await portOpen(Number(port)), `port ${port} is closed`).toBe(false);
      expect(await portOpen(Number(metricsPort)), `port ${metricsPort} is closed`).toBe(false);
      const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
          keys.push(...found);
          cursor = next;
        } while (cursor !== '0');
        expect(keys, `Redis keys under ${prefix}`).toEqual([]);
      } finally {
        redis.disconnect();
      }
    },
    LIMIT_MS + 60_000,
  );
});

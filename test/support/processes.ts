import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { RunningService } from '../../src/service.js';
import type { Config } from '../../src/config.js';
import type { TestDatabase } from './database.js';
import type { TestService } from './service.js';

/**
 * The service's own entry points (`src/main.ts`, `src/worker.ts`) as real child processes, the way a deployment
 * runs several replicas against one Postgres and one Redis. Each process logs JSON at `info` on stdout; the
 * helper reads it line by line (so the pipe never fills) and learns the API's address from its
 * `member-match listening` line, so PORT=0 can pick a free port without a race.
 */
export interface ServiceProcess {
  kind: 'api' | 'worker';
  child: ChildProcess;
  /** The API's address (`http://127.0.0.1:<port>`); empty for a worker. */
  url: string;
  /** Sends SIGTERM and resolves with the exit code once the process has exited. */
  stop(): Promise<number | null>;
}

const READY_MESSAGE = { api: 'member-match listening', worker: 'member-match workers running' } as const;
const ENTRY = { api: 'src/main.ts', worker: 'src/worker.ts' } as const;

export async function spawnServiceProcess(kind: 'api' | 'worker', env: Record<string, string>, readyTimeoutMs = 60_000): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY[kind]], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
  });
  const ready = new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.includes(READY_MESSAGE[kind])) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === READY_MESSAGE[kind]) resolve(entry.url ?? '');
      } catch {
        // not a log line of ours
      }
    });
    void exited.then((code) => reject(new Error(`${kind} process exited (${code}) before it was ready: ${stderr}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${kind} process not ready in ${readyTimeoutMs} ms: ${stderr}`)), readyTimeoutMs);
  });
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  try {
    const url = await Promise.race([ready, timeout]);
    return { kind, child, url, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An API process seen as a {@link TestService}, so the door helpers (test/support/doors.ts) can drive it: they
 * use its url and config, and the test's own (owner) connection for registering partners and workloads.
 */
export function processAsTestService(api: ServiceProcess, config: Config, database: TestDatabase): TestService {
  return {
    url: api.url,
    config,
    service: { deps: { db: database.db, config } } as unknown as RunningService,
    database,
    async stop() {
      await api.stop();
    },
  };
}

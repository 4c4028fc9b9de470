/**
 * What every bench prints so that its numbers can be trusted on a shared machine (issue 13): the machine and
 * its load average before the bench starts, and a bare Express endpoint (bench/bare-express-server.ts, its own
 * process) taking the same body in the same run, with the ratio of the service's figure to the bare one. On a
 * machine whose cores other people are using, the absolute figures move from run to run; the ratio moves less,
 * because both sides see the same load.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import autocannon from 'autocannon';
import { sql } from 'kysely';
import type { Db } from '../src/db/database.js';

const loads = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** The machine, and its load average (1, 5, 15 min) now: call it before the bench starts any work. */
export function printMachine(label = 'machine'): void {
  console.log(
    `${label}: ${os.availableParallelism()} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
      `load average before start ${loads()} (1/5/15 min)`,
  );
}

/** The load average now, for the end of a run. */
export function printLoad(label: string): void {
  console.log(`${label}: load average ${loads()}`);
}

export interface BareExpress {
  url: string;
  stop(): Promise<void>;
}

/** Starts the bare-Express baseline server in its own process. */
export async function startBareExpress(): Promise<BareExpress> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', new URL('./bare-express-server.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PORT: '0' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const m = /^listening (\d+)/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error('bare Express server exited before listening')));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The request list for autocannon, one share per connection: connection k sends requests k, k + n, k + 2n, …
 *
 * Left alone, every connection walks the whole list from the first request, in step with the others, so ten
 * connections ask about the *same* person at the same moment and queue on that person's link row, which is no
 * partner's traffic. And autocannon builds every request of a connection's list when it opens the connection,
 * on the bench's one thread: ten connections × 5,000 bodies held the first responses for about 3 s at the start
 * of every run (the "max 3,100 ms" of earlier runs, and a fifth of a 15 s run's average lost). So each connection
 * is opened with one request and then given only its own share. `lockstep` keeps the old behaviour, for comparison.
 */
export function perConnectionRequests<T>(requests: readonly T[], connections: number, lockstep = false): { requests: T[]; setupClient?: (client: { setRequests(r: T[]): void }) => void } {
  if (lockstep || requests.length < connections) return { requests: [...requests] };
  let next = 0;
  return {
    requests: requests.slice(0, 1),
    setupClient(client) {
      const k = next++ % connections;
      client.setRequests(requests.filter((_, i) => i % connections === k));
    },
  };
}

/**
 * Unthrottled requests/s of the bare endpoint for the same requests, connections and duration as the service's
 * run (autocannon), each connection given its share of the requests as the service's were.
 */
export async function bareRequestsPerSecond(
  requests: { method: 'POST'; path: string; body: string }[],
  headers: Record<string, string>,
  connections: number,
  seconds: number,
  lockstep = false,
): Promise<autocannon.Result> {
  const bare = await startBareExpress();
  try {
    // A short warm-up, as the service gets one.
    await autocannon({ url: bare.url, connections, duration: 3, headers, ...perConnectionRequests(requests, connections, lockstep) });
    return await autocannon({ url: bare.url, connections, duration: seconds, headers, ...perConnectionRequests(requests, connections, lockstep) });
  } finally {
    await bare.stop();
  }
}

/**
 * Seconds for the bare endpoint to take one upload of `file` (streamed, the same way the service's upload is,
 * and read to the end): the median of `repeats` uploads after one warm-up.
 */
export async function bareUploadSeconds(path: string, file: string, contentType: string, repeats = 3): Promise<number> {
  const bare = await startBareExpress();
  const size = (await stat(file)).size;
  try {
    return await medianSeconds(repeats, () =>
      fetch(`${bare.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': contentType, 'content-length': String(size) },
        body: Readable.toWeb(createReadStream(file)) as ReadableStream,
        duplex: 'half',
      } as RequestInit),
    );
  } finally {
    await bare.stop();
  }
}

/** Seconds for the bare endpoint to take one JSON body (parsed): the median of `repeats` after one warm-up. */
export async function bareJsonSeconds(path: string, body: string, repeats = 3): Promise<number> {
  const bare = await startBareExpress();
  try {
    return await medianSeconds(repeats, () => fetch(`${bare.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body }));
  } finally {
    await bare.stop();
  }
}

/** The median time of `repeats` requests (each read to its end, each must answer 200), after one warm-up. */
async function medianSeconds(repeats: number, send: () => Promise<Response>): Promise<number> {
  const once = async (): Promise<number> => {
    const started = performance.now();
    const response = await send();
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`bare Express answered ${response.status}`);
    return (performance.now() - started) / 1000;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) times.push(await once());
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

/** `service / bare`, as the benches print it. */
export function ratioLine(label: string, service: number, bare: number, unit: string): string {
  return `${label}: service ${service.toFixed(1)} ${unit}, bare Express ${bare.toFixed(1)} ${unit} (same body, same run): ratio ${(service / bare).toFixed(4)} (${(bare / service).toFixed(1)}× slower than bare)`;
}

/**
 * VACUUM (ANALYZE) of the bench's scratch database before a measured run. Each run leaves dead rows behind —
 * the sealer's work queue (audit_pending) is deleted from many times a second, a repeated match rewrites its
 * link — which autovacuum clears on a default install; on a machine with autovacuum off (this project's CI
 * machine has `autovacuum = off` in conf.d/90-ci.conf) they pile up, and each run was slower than the last
 * (147, 86, 111 req/s in three runs on 2026-12-07, with 81,584 dead queue rows by the end). Then a CHECKPOINT, so
 * that the pages an earlier step dirtied (the index import, the vacuum itself) are written before the measured run
 * and not by its backends during it (a run right after a 300,000-member import: 463 req/s against 486–491).
 * Prints what it took.
 */
export async function vacuumScratch(db: Db): Promise<void> {
  const started = Date.now();
  await sql`VACUUM (ANALYZE)`.execute(db);
  // CHECKPOINT needs a superuser or pg_checkpoint; without either the run goes on, as before.
  await sql`CHECKPOINT`.execute(db).catch(() => console.log('CHECKPOINT not permitted to this role: dirty pages are written during the run'));
  console.log(`scratch database vacuumed and checkpointed in ${((Date.now() - started) / 1000).toFixed(1)} s (runs start from the same state)`);
}

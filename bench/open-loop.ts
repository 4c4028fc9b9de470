/**
 * The open-loop load generator of bench:member-match, in a process of its own.
 *
 * A constant-rate, open-loop load: request i is scheduled at start + i / rate and sent then, whether or not
 * earlier ones have answered, and its latency is measured from that schedule, so any delay of the generator's
 * own (a late timer, a garbage collection) counts as latency. (autocannon's `overallRate` sends each second's
 * quota in a burst at the start of the second and then corrects latencies for coordinated omission, which
 * reports bursts of its own making as server latency.)
 *
 * Why a process of its own: inside the bench's process, which holds the whole synthetic query set, the
 * autocannon runs' results and the truth table, the generator's scavenges took 9–20 ms, and requests scheduled
 * during one are sent late. Its slowest requests came in clusters that a scavenge of the bench's overlapped. Out
 * of process, with a small heap, the service's p99 at 300 req/s stayed where it was (25–48 ms in 3 runs against
 * 33–58 before), so those scavenges followed the stalls (a burst of late responses to parse) rather than caused
 * them (docs/benchmarks.md, fifth session); the generator is kept apart anyway, so that its own pauses stay small.
 * Here the process holds the bodies and a preallocated array of latencies and nothing else.
 *
 * `runOpenLoop` (for the bench) writes the bodies to a temporary file and runs this module as a script:
 * `node --import tsx bench/open-loop.ts SPEC.json`, which prints one JSON result line.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OpenLoopSpec {
  url: string;
  headers: Record<string, string>;
  /** A file of JSON lines, one request body (a string) each; request i sends body i mod n. */
  bodiesFile: string;
  rate: number;
  seconds: number;
}

export interface OpenLoopResult {
  sent: number;
  seconds: number;
  /** Milliseconds from each request's *scheduled* send time to its response: queueing delay included. */
  latencies: number[];
  /** The same latencies by response status: a 422 (review or no match) searched the wide blocks too. */
  latenciesByStatus: Record<string, number[]>;
  statuses: Record<string, number>;
  errors: number;
}

async function generate(spec: OpenLoopSpec): Promise<OpenLoopResult> {
  const bodies = (await readFile(spec.bodiesFile, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as string);
  const total = Math.round(spec.rate * spec.seconds);
  const latencies = new Float64Array(total);
  const statuses = new Uint16Array(total); // 0: a transport error
  let done = 0;
  let allDone: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / spec.rate;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    fetch(spec.url, { method: 'POST', headers: spec.headers, body: bodies[i % bodies.length] })
      .then(async (response) => {
        await response.arrayBuffer();
        latencies[i] = performance.now() - scheduled;
        statuses[i] = response.status;
      })
      .catch(() => undefined)
      .finally(() => {
        if (++done === total) allDone();
      });
  }
  if (total > 0) await finished;
  const result: OpenLoopResult = { sent: total, seconds: (performance.now() - start) / 1000, latencies: [], latenciesByStatus: {}, statuses: {}, errors: 0 };
  for (let i = 0; i < total; i++) {
    const status = statuses[i]!;
    if (status === 0) {
      result.errors++;
      continue;
    }
    result.latencies.push(latencies[i]!);
    (result.latenciesByStatus[status] ??= []).push(latencies[i]!);
    result.statuses[status] = (result.statuses[status] ?? 0) + 1;
  }
  return result;
}

/** Runs the open loop in a process of its own (see above) and returns its result. */
export async function runOpenLoop(url: string, headers: Record<string, string>, bodies: readonly string[], rate: number, seconds: number): Promise<OpenLoopResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-open-loop-'));
  try {
    const bodiesFile = path.join(dir, 'bodies.jsonl');
    await writeFile(bodiesFile, bodies.map((body) => JSON.stringify(body)).join('\n'));
    const specFile = path.join(dir, 'spec.json');
    await writeFile(specFile, JSON.stringify({ url, headers, bodiesFile, rate, seconds } satisfies OpenLoopSpec));
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), specFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`the open-loop generator exited with ${code}`);
    return JSON.parse(output) as OpenLoopResult;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const spec = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as OpenLoopSpec;
  process.stdout.write(`${JSON.stringify(await generate(spec))}\n`);
}

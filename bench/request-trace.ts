/**
 * A request tracer for the API process, loaded with `--import` (bench:member-match passes
 * BENCH_SERVER_NODE_ARGS to the server):
 *
 *   BENCH_SERVER_NODE_ARGS="--import ./bench/request-trace.ts" REQUEST_TRACE_DIR=/tmp/trace npm run bench:member-match -- …
 *   npx tsx bench/request-trace-report.ts /tmp/trace/trace-PID.ndjson [RATE]
 *
 * It records, as JSON lines, every HTTP request (start, end, status), every Postgres statement, pool checkout and
 * Redis command with the request it ran for (AsyncLocalStorage; 0 for the process's own background work: the
 * audit sealer, checkpoints, gauges), and every event-loop lag over 15 ms. Statements are named by their first
 * characters or their prepared name, never their parameters: no demographics reach the file.
 *
 * This is how the sixth session found the audit sealer reading the whole chain five times a second
 * (docs/benchmarks.md): the report splits each latency band's time into Postgres, Redis, pool waits and the
 * process's own work, and lists what ran in the background. It wraps library prototypes, so it is a diagnostic
 * for benches, never loaded by the service itself.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface TraceEvent {
  /** The request's number in this process; 0 for work outside any request. */
  r: number;
  k: 'req' | 'pg' | 'pool' | 'redis' | 'lag';
  /** The URL (requests), statement start or prepared name (pg), command (redis). */
  n?: string;
  /** HTTP status (requests). */
  s?: number;
  t0: number;
  t1: number;
}

const dir = process.env.REQUEST_TRACE_DIR ?? '/tmp/request-trace';
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `trace-${process.pid}.ndjson`);
const context = new AsyncLocalStorage<{ request: number }>();
let pending: TraceEvent[] = [];
let requests = 0;
const requestOf = () => context.getStore()?.request ?? 0;
const record = (event: TraceEvent) => void pending.push(event);
const flush = () => {
  if (pending.length === 0) return;
  appendFileSync(file, `${pending.map((event) => JSON.stringify(event)).join('\n')}\n`);
  pending = [];
};
setInterval(flush, 1_000).unref();
process.on('exit', flush);

const emit = http.Server.prototype.emit as (this: http.Server, event: string, ...args: unknown[]) => boolean;
http.Server.prototype.emit = function (this: http.Server, event: string, ...args: unknown[]) {
  if (event !== 'request') return emit.call(this, event, ...args);
  const [req, res] = args as [http.IncomingMessage, http.ServerResponse];
  const request = ++requests;
  const t0 = performance.now();
  res.once('finish', () => record({ r: request, k: 'req', n: req.url ?? '', s: res.statusCode, t0, t1: performance.now() }));
  return context.run({ request }, () => emit.call(this, event, ...args));
} as unknown as typeof http.Server.prototype.emit;

type Query = (this: pg.Client, ...args: unknown[]) => unknown;
const query = pg.Client.prototype.query as unknown as Query;
(pg.Client.prototype as unknown as { query: Query }).query = function (this: pg.Client, ...args: unknown[]) {
  const r = requestOf();
  const t0 = performance.now();
  const first = args[0] as string | { name?: string; text?: string };
  // A statement by its text's start (after the prepared marker) and a digest of the whole text: two statements
  // that begin alike (the candidate lookup with and without card values) stay apart.
  const text = typeof first === 'string' ? first : (first.text ?? first.name ?? '?');
  const n = `${text.replace('/* prepared */', '').replace(/\s+/g, ' ').trim().slice(0, 48)} #${createHash('sha1').update(text).digest('hex').slice(0, 6)}`;
  const result = query.apply(this, args);
  if (result instanceof Promise) result.then(() => record({ r, k: 'pg', n, t0, t1: performance.now() }), () => undefined);
  return result;
};

type Connect = (this: pg.Pool, ...args: unknown[]) => unknown;
const connect = pg.Pool.prototype.connect as unknown as Connect;
(pg.Pool.prototype as unknown as { connect: Connect }).connect = function (this: pg.Pool, ...args: unknown[]) {
  const r = requestOf();
  const t0 = performance.now();
  const done = () => record({ r, k: 'pool', t0, t1: performance.now() });
  const callback = args[0] as ((...results: unknown[]) => void) | undefined;
  if (callback) return connect.call(this, (...results: unknown[]) => (done(), callback(...results)));
  return (connect.call(this) as Promise<unknown>).then((client) => (done(), client));
};

type SendCommand = (this: Redis, command: { name: string; args?: unknown[]; promise: Promise<unknown> }, ...rest: unknown[]) => unknown;
const sendCommand = Redis.prototype.sendCommand as unknown as SendCommand;
(Redis.prototype as unknown as { sendCommand: SendCommand }).sendCommand = function (this: Redis, command, ...rest) {
  const r = requestOf();
  const t0 = performance.now();
  const result = sendCommand.call(this, command, ...rest);
  // A script by its first key (queue and counter keys name no person), so BullMQ's scripts and ours stay apart.
  const n = /^eval/.test(command.name) ? `${command.name} ${String(command.args?.[2] ?? '').replace(/[0-9a-f-]{8,}/g, '…')}` : command.name;
  command.promise.then(() => record({ r, k: 'redis', n, t0, t1: performance.now() }), () => undefined);
  return result;
};

// Event-loop lag: a 5 ms timer that fires more than 15 ms late.
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last > 15) record({ r: 0, k: 'lag', t0: last, t1: now });
  last = now;
}, 5).unref();

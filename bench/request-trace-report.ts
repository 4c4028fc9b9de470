/**
 * npx tsx bench/request-trace-report.ts TRACE.ndjson [RATE] — reads a trace written by bench/request-trace.ts and
 * prints, for the open-loop phase of a bench:member-match run (the longest run of seconds whose $member-match
 * count is within 15 % of RATE, default 80), the server-side latency percentiles; for each latency band, the mean
 * time spent in Postgres (statements and pool checkouts), Redis and the process itself; the mean time of each
 * statement by band; and the background work (outside any request) over the whole trace.
 */
import { readFileSync } from 'node:fs';
import type { TraceEvent } from './request-trace.js';

const [file, rateArg] = process.argv.slice(2);
if (!file) throw new Error('usage: tsx bench/request-trace-report.ts TRACE.ndjson [RATE]');
const rate = Number(rateArg ?? 80);
const events = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as TraceEvent);

const requests = new Map<number, TraceEvent>();
const work = new Map<number, TraceEvent[]>();
for (const event of events) {
  if (event.k === 'req') requests.set(event.r, event);
  else work.set(event.r, [...(work.get(event.r) ?? []), event]);
}
const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);

/** The open-loop phase's latency bands (none in a worker's trace: it serves no HTTP requests). */
function reportRequests(): void {
  const matches = [...requests.values()].filter((r) => r.n?.includes('member-match')).sort((a, b) => a.t0 - b.t0);
  if (matches.length === 0) return;

  // The open-loop phase: the longest run of whole seconds at about RATE requests.
  const origin = matches[0]!.t0;
  const perSecond = new Map<number, number>();
  for (const r of matches) perSecond.set(Math.floor((r.t0 - origin) / 1000), (perSecond.get(Math.floor((r.t0 - origin) / 1000)) ?? 0) + 1);
  const lastSecond = Math.max(...perSecond.keys());
  let best: [number, number] = [0, -1];
  let start = -1;
  for (let s = 0; s <= lastSecond + 1; s++) {
    const steady = Math.abs((perSecond.get(s) ?? 0) - rate) <= rate * 0.15;
    if (steady && start < 0) start = s;
    if (!steady && start >= 0) {
      if (s - start > best[1] - best[0] + 1) best = [start, s - 1];
      start = -1;
    }
  }
  if (best[1] < 0) {
    console.log(`no second with about ${rate} requests`);
    return;
  }
  const phase = matches.filter((r) => r.t0 >= origin + best[0] * 1000 && r.t0 < origin + (best[1] + 1) * 1000);
  const latency = (r: TraceEvent) => r.t1 - r.t0;
  phase.sort((a, b) => latency(a) - latency(b));
  const at = (q: number) => latency(phase[Math.min(phase.length - 1, Math.floor(phase.length * q))]!).toFixed(1);
  console.log(`${phase.length} requests over ${best[1] - best[0] + 1} s at about ${rate} req/s; server-side latency p50 ${at(0.5)} ms, p90 ${at(0.9)}, p99 ${at(0.99)}, max ${at(1)}`);

  /** Total length of the union of the intervals (a MULTI's commands overlap). */
  function covered(intervals: TraceEvent[]): number {
    let total = 0;
    let end = -Infinity;
    for (const { t0, t1 } of [...intervals].sort((a, b) => a.t0 - b.t0)) {
      if (t1 <= end) continue;
      total += t1 - Math.max(t0, end);
      end = t1;
    }
    return total;
  }
  const bands: [string, TraceEvent[]][] = [
    ['p0–50', phase.slice(0, Math.floor(phase.length * 0.5))],
    ['p50–90', phase.slice(Math.floor(phase.length * 0.5), Math.floor(phase.length * 0.9))],
    ['p90–99', phase.slice(Math.floor(phase.length * 0.9), Math.floor(phase.length * 0.99))],
    ['top 1 %', phase.slice(Math.floor(phase.length * 0.99))],
  ];
  console.log('\nband       total   Postgres  statements  pool wait   Redis   in process (ms, means)');
  for (const [name, band] of bands) {
    const split = band.map((r) => {
      const own = work.get(r.r) ?? [];
      const of = (kind: TraceEvent['k']) => covered(own.filter((e) => e.k === kind));
      const [pgTime, pool, redis] = [of('pg'), of('pool'), of('redis')];
      return { total: latency(r), pgTime, pool, redis, statements: own.filter((e) => e.k === 'pg').length, rest: latency(r) - pgTime - pool - redis };
    });
    const m = (pick: (s: (typeof split)[number]) => number) => mean(split.map(pick)).toFixed(1).padStart(7);
    console.log(`${name.padEnd(8)} ${m((s) => s.total)}   ${m((s) => s.pgTime)}   ${m((s) => s.statements)}   ${m((s) => s.pool)}  ${m((s) => s.redis)}   ${m((s) => s.rest)}`);
  }

  console.log('\nmean time of each statement by band (ms):');
  for (const [name, band] of bands) {
    const byStatement = new Map<string, number[]>();
    for (const r of band) for (const e of work.get(r.r) ?? []) if (e.k === 'pg') byStatement.set(e.n!, [...(byStatement.get(e.n!) ?? []), e.t1 - e.t0]);
    console.log(`  ${name}: ${[...byStatement].sort().map(([n, t]) => `${n.slice(0, 32)} ×${t.length} ${mean(t).toFixed(1)}`).join(' · ')}`);
  }
}
reportRequests();

console.log('\nbackground work over the whole trace (outside any request):');
const background = new Map<string, number[]>();
for (const e of work.get(0) ?? []) background.set(`${e.k} ${e.n ?? ''}`, [...(background.get(`${e.k} ${e.n ?? ''}`) ?? []), e.t1 - e.t0]);
for (const [name, times] of [...background].sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0)).slice(0, 12)) {
  console.log(`  ${String(times.length).padStart(6)} × mean ${mean(times).toFixed(1).padStart(6)} ms, max ${Math.max(...times).toFixed(1).padStart(6)}, total ${times.reduce((a, b) => a + b, 0).toFixed(0).padStart(6)} ms  ${name.slice(0, 70)}`);
}

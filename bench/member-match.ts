/**
 * npm run bench:member-match [-- --members N] [--queries Q] [--rate R] [--duration S] [--processes 1,2] [--warmup S] [--unthrottled S] [--lockstep]
 *
 * autocannon against a real server (its own process) over a synthetic index (default 1,000,000 members,
 * replaying Q (default 5,000) of the 100,000 synthetic queries that bench:batch uses too,
 * `member-match synth`, seed 2027), replaying synthetic queries that carry *no usable card identifier*, so
 * every request takes the probabilistic path (block → compare → score → decide) and many end in a link and
 * an audit event. Prints the machine, then throughput, p50/p90/p99 latency and errors for a warm-up run, a
 * fixed-rate run (default 100 req/s for 30 s; the target is p99 < 50 ms) and an unthrottled run.
 *
 * `--metadata` also measures GET /fhir/metadata per process count (no database, no audit event: a control).
 * `--processes 1,2` runs the whole sequence once per entry, the service started with WEB_CONCURRENCY set to it
 * (that many API processes on one port, node:cluster), one after the other on the same index. Before anything
 * starts it prints the machine's load average; at the end it measures a bare Express endpoint taking the same
 * request bodies with the same connections and duration (bench/baseline.ts) and prints each unthrottled
 * figure's ratio to it.
 *
 * Each of the 10 connections sends its own share of the query list (bench/baseline.ts perConnectionRequests), so
 * concurrent requests are about different people, as a partner's traffic is, and the bench does not stall its
 * own first responses building 10 × 5,000 requests; `--lockstep` gives every connection the whole list from the
 * first query, in step, as the bench did before 2026-12-07.
 *
 * The index is loaded into a scratch database named after the roster's content (as `member-match eval`
 * does), so a second run reuses it; the synthetic files live in bench/out/.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { runOpenLoop, type OpenLoopResult } from './open-loop.js';
import { bareRequestsPerSecond, startBareExpress, printLoad, printMachine, ratioLine, perConnectionRequests, vacuumScratch } from './baseline.js';
import { cpuPerUnit, cpuSampler } from './cpu.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion } from '../src/cli/partner-tools.js';
import { readQueries, readTruth } from '../tools/evaluation/files.js';
import { openIndexDatabase } from '../tools/evaluation/scratch-database.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { runSynth } from '../tools/synth/index.js';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '1000000' },
    queries: { type: 'string', default: '5000' },
    lockstep: { type: 'boolean', default: false },
    rate: { type: 'string', default: '100' },
    duration: { type: 'string', default: '30' },
    processes: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '20' },
    unthrottled: { type: 'string', default: '15' },
    // Also GET /fhir/metadata (the CapabilityStatement: no database, no audit event) per process count: a control
    // for whether more API processes add throughput at all on this machine.
    metadata: { type: 'boolean', default: false },
  },
});
const members = Number(values.members);
const queryCount = Number(values.queries);
/** Every connection walks the request list from the start, in step (the behaviour before 2026-12-07). */
const lockstep = values.lockstep === true;
const rate = Number(values.rate);
const duration = Number(values.duration);
const processCounts = values.processes.split(',').map(Number);
if (processCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--processes: a comma-separated list of positive integers');
const warmupSeconds = Number(values.warmup);
const unthrottledSeconds = Number(values.unthrottled);
const connections = 10;
const partnerOrg = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };
const port = 18000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;

function report(label: string, result: autocannon.Result): void {
  console.log(
    `${label}: ${result.requests.total} requests in ${result.duration.toFixed(1)} s = ${result.requests.average.toFixed(1)} req/s; ` +
      `latency p50 ${result.latency.p50} ms, p90 ${result.latency.p90} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms; ` +
      `2xx ${result['2xx']}, non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}; ` +
      `by status ${JSON.stringify(Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count])))}`,
  );
}

function reportOpenLoop(label: string, r: OpenLoopResult): void {
  const percentiles = (latencies: readonly number[]) => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return `p50 ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${at(1).toFixed(1)} ms`;
  };
  console.log(
    `${label}: ${r.sent} requests in ${r.seconds.toFixed(1)} s = ${(r.sent / r.seconds).toFixed(1)} req/s; ` +
      `latency ${percentiles(r.latencies)}; errors ${r.errors}; by status ${JSON.stringify(r.statuses)}`,
  );
  const statuses = Object.keys(r.latenciesByStatus);
  if (statuses.length > 1) for (const status of statuses) console.log(`  status ${status}: ${percentiles(r.latenciesByStatus[status]!)}`);
}

async function main(): Promise<void> {
  printMachine();
  // The synthetic set is shared with bench:batch (100,000 queries): one index of a given size, loaded once.
  const synthQueries = Math.max(queryCount, 100_000);
  const dir = path.resolve('bench', 'out', `synth-${members}-${synthQueries}`);
  if (!existsSync(path.join(dir, 'truth.csv'))) {
    const started = Date.now();
    await runSynth({ members, queries: synthQueries, seed: 2027, out: dir });
    console.log(`synthetic index and queries written to ${dir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/member_match';
  const started = Date.now();
  const { db, url: databaseUrl } = await openIndexDatabase(serverUrl, path.join(dir, 'roster.csv'), 'http://example.org/old-payer/identifiers/member', console.log);
  console.log(`index ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  let child: ReturnType<typeof spawn> | undefined;
  try {
    const keys = await generatePartnerKeyPair();
    const client = await registerPartnerClient(db, { name: 'bench', organization: partnerOrg, jwks: keys.publicJwks, scopes: ['system/Patient.$member-match'] });

    // Queries without a usable card identifier: the probabilistic path. The consent names this partner.
    const truth = await readTruth(path.join(dir, 'truth.csv'));
    const consent = hrexExampleRequest({ recipient: partnerOrg, policy: 'sensitive' }).parameter!.find((p) => p.name === 'Consent')!;
    const bodies: string[] = [];
    for await (const query of readQueries(path.join(dir, 'queries.ndjson'))) {
      if (bodies.length >= queryCount) break;
      const row = truth.get(query.id);
      if (row?.memberId && !row.hazard.includes('no-card')) continue;
      const request = query.parameters as { parameter: unknown[] };
      request.parameter.push(consent);
      bodies.push(JSON.stringify(request));
    }
    console.log(`${bodies.length} identifier-less queries (members without a card and non-members)`);

    const unthrottled: { processes: number; result: autocannon.Result }[] = [];
    let requests: { method: 'POST'; path: string; body: string }[] = [];
    let headers: Record<string, string> = {};
    for (const processes of processCounts) {
      await vacuumScratch(db);
      console.log(`--- ${processes} API process${processes === 1 ? '' : 'es'} (WEB_CONCURRENCY=${processes}); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      // BENCH_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server (each process).
      child = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean), ...(process.env.BENCH_BUILT === 'true' ? ['dist/src/main.js'] : ['--import', 'tsx', 'src/main.ts'])], {
        // One benchmark client sends thousands of requests, many matching nobody: lift the per-client limits.
        env: {
          ...process.env,
          PORT: String(port),
          DATABASE_URL: databaseUrl,
          LOG_LEVEL: 'warn',
          REDIS_KEY_PREFIX: `mm-bench-${port}:`,
          RATE_LIMIT_PER_MINUTE: '1000000',
          BRUTE_FORCE_UNMATCHED: '1000000',
          BRUTE_FORCE_CARD_VARIANTS: '1000000',
          BRUTE_FORCE_BIRTH_DATE_VARIANTS: '1000000',
          REVIEW_CASES_PER_HOUR: '1000000',
          METRICS_PORT: '0',
          WEB_CONCURRENCY: String(processes),
          // The queue workers in a process of their own would compete for the same cores; none are needed here.
          RUN_WORKERS: 'false',
        },
        stdio: ['ignore', process.env.BENCH_SERVER_NODE_ARGS ? 'inherit' : 'ignore', 'inherit'],
      });
      for (let i = 0; ; i++) {
        if (i > 150) throw new Error('server did not start');
        if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const assertion = await signClientAssertion({ clientId: client.clientId, tokenUrl: `${base}/oauth/token`, privateJwk: keys.privateJwk });
      const token = (await requestAccessToken(`${base}/oauth/token`, assertion, 'system/Patient.$member-match')).body.access_token as string;
      requests = bodies.map((body) => ({ method: 'POST' as const, path: '/fhir/Patient/$member-match', body }));
      headers = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' };

      // Warm-up: JIT, pools, and the page cache (a 1M-member index is ~3 GB on disk; this machine's kernel
      // reclaims idle page cache, so the first requests after a pause read from disk).
      report(`warm-up, unthrottled, ${warmupSeconds} s`, await autocannon({ url: base, connections, duration: warmupSeconds, headers, ...perConnectionRequests(requests, connections, lockstep) }));
      if (duration > 0) reportOpenLoop(`fixed rate ${rate} req/s, ${duration} s (open loop)`, await runOpenLoop(`${base}/fhir/Patient/$member-match`, headers, bodies, rate, duration));
      const cpu = cpuSampler({ rootPids: [child.pid!], database: new URL(databaseUrl).pathname.slice(1) });
      const result = await autocannon({ url: base, connections, duration: unthrottledSeconds, headers, ...perConnectionRequests(requests, connections, lockstep) });
      report(`unthrottled, ${connections} connections, ${unthrottledSeconds} s`, result);
      console.log(`  ${cpuPerUnit(cpu.stop(), result.requests.total, 'request')}`);
      unthrottled.push({ processes, result });
      if (values.metadata) {
        report(`GET /fhir/metadata, unthrottled, ${connections} connections, ${unthrottledSeconds} s`, await autocannon({ url: `${base}/fhir/metadata`, connections, duration: unthrottledSeconds }));
      }
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      child = undefined;
    }
    // The same bodies to a bare Express endpoint, same connections and duration (the token header is sent too).
    const bare = await bareRequestsPerSecond(requests, headers, connections, unthrottledSeconds, lockstep);
    report(`bare Express, same bodies, unthrottled, ${connections} connections, ${unthrottledSeconds} s`, bare);
    // The open loop's floor: the same generator, rate and bodies against the bare endpoint. What it shows (the
    // generator's own delays and the machine's) is in the service's latencies too.
    if (duration > 0) {
      const bareServer = await startBareExpress();
      try {
        await autocannon({ url: bareServer.url, connections, duration: 3, headers, ...perConnectionRequests(requests, connections, lockstep) });
        reportOpenLoop(`bare Express, same bodies, fixed rate ${rate} req/s, ${duration} s (open loop)`, await runOpenLoop(`${bareServer.url}/fhir/Patient/$member-match`, headers, bodies, rate, duration));
      } finally {
        await bareServer.stop();
      }
    }
    for (const { processes, result } of unthrottled) {
      console.log(ratioLine(`member-match unthrottled, ${processes} API process${processes === 1 ? '' : 'es'}`, result.requests.average, bare.requests.average, 'req/s'));
    }
    printLoad('end');
    // 200 = matched (a link and its audit event written); 422 = review or no match (an audit event written).
  } finally {
    child?.kill('SIGTERM');
    await db.destroy();
  }
}

await main();

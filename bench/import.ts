/**
 * npm run bench:import [-- members] — roster import throughput: writes a synthetic roster of N members
 * (default 100,000; `member-match synth`, so about 10 % more rows: dental coverages), imports it into a throwaway database, then imports it again (the idempotent path: every row
 * unchanged, nothing written). Prints rows, seconds, rows/s and peak RSS for each run. Targets: 100,000 rows in
 * under 30 s; a first import of 1,000,000 members in under 120 s (issue 13).
 *
 * Before it starts it prints the machine's load average, and it measures a bare Express endpoint taking the same
 * roster file as an upload in the same run (bench/baseline.ts), printing the import's ratio to it.
 * BENCH_STATEMENTS=true also prints where the time in Postgres went, by statement (bench/statement-timing.ts);
 * BENCH_REIMPORT=false skips the re-import.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dropDatabase, openDatabase } from '../src/db/database.js';
import type { ImportSummary } from '../src/members/roster-format/errors.js';
import { importRoster } from '../src/members/roster-import.js';
import { runSynth } from '../tools/synth/index.js';
import { cpuSampler } from './cpu.js';
import { printLoad, printMachine, ratioLine, bareUploadSeconds } from './baseline.js';
import { printStatementTimes, timeStatements } from './statement-timing.js';

const rows = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(rows) || rows < 1) throw new Error('usage: tsx bench/import.ts [rows]');
const server = process.env.BENCH_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
const dbName = `mm_bench_import_${randomBytes(4).toString('hex')}`;
const memberIdentifierSystem = 'http://example.org/old-payer/identifiers/member';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

async function timed(label: string, run: () => Promise<ImportSummary>): Promise<ImportSummary> {
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 25);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const postgres = cpuSampler({ database: dbName });
  try {
    const summary = await run();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    const postgresCpu = postgres.stop().postgres;
    peak = Math.max(peak, process.memoryUsage().rss);
    const { errors, ...counts } = summary;
    console.log(
      `${label}: ${summary.rows} rows in ${seconds.toFixed(2)} s = ${Math.round(summary.rows / seconds)} rows/s; ` +
        `peak RSS ${mib(peak)} (start ${mib(baseline)}); Node CPU ${((used.user + used.system) / 1e6).toFixed(1)} s, Postgres CPU ≥ ${postgresCpu.toFixed(1)} s; ${JSON.stringify(counts)}`,
    );
    if (errors.length > 0) console.log(`  first errors: ${JSON.stringify(errors.slice(0, 5))}`);
    return summary;
  } finally {
    clearInterval(sampler);
    postgres.stop();
  }
}

async function main(): Promise<void> {
  printMachine();
  if (process.env.BENCH_STATEMENTS === 'true') timeStatements();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-import-'));
  // BENCH_ROSTER=<file> imports that roster (e.g. one an earlier run's synth wrote) instead of writing one.
  const file = process.env.BENCH_ROSTER ?? path.join(dir, 'roster.csv');
  const db = await openDatabase(`${server}/${dbName}`, 4);
  try {
    const writeStarted = Date.now();
    if (process.env.BENCH_ROSTER) console.log(`roster: ${file}, ${mib((await stat(file)).size)}`);
    else {
      await runSynth({ members: rows, queries: 0, seed: 42, out: dir });
      console.log(`synthetic roster: ${rows} members, ${mib((await stat(file)).size)}, written in ${((Date.now() - writeStarted) / 1000).toFixed(2)} s`);
    }

    const firstStarted = performance.now();
    const first = await timed('import', () => importRoster(db, file, { memberIdentifierSystem }));
    const firstSeconds = (performance.now() - firstStarted) / 1000;
    if (process.env.BENCH_STATEMENTS === 'true') printStatementTimes();
    // BENCH_REIMPORT=false skips the second, idempotent import (a 1 M roster's takes as long as the first).
    if (process.env.BENCH_REIMPORT !== 'false') {
      const again = await timed('re-import (idempotent)', () => importRoster(db, file, { memberIdentifierSystem }));
      if (process.env.BENCH_STATEMENTS === 'true') printStatementTimes();
      if (again.unchanged !== first.rows - first.rejected) console.log('WARNING: the re-import was not all unchanged');
    }

    const counts = await db
      .selectNoFrom((eb) => [
        eb.selectFrom('members').select(eb.fn.countAll<string>().as('n')).as('members'),
        eb.selectFrom('coverages').select(eb.fn.countAll<string>().as('n')).as('coverages'),
        eb.selectFrom('member_identifiers').select(eb.fn.countAll<string>().as('n')).as('identifiers'),
      ])
      .executeTakeFirstOrThrow();
    console.log(`tables: ${JSON.stringify(counts)}`);

    // The same file, uploaded to a bare Express endpoint that reads it and counts its lines.
    const bareSeconds = await bareUploadSeconds('/rosters', file, 'text/csv');
    console.log(ratioLine('first import', first.rows / firstSeconds, first.rows / bareSeconds, 'rows/s'));
    printLoad('end');
  } finally {
    await db.destroy();
    await dropDatabase(`${server}/${dbName}`);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

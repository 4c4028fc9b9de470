/**
 * npm run bench:import [-- members] — roster import throughput: writes a synthetic roster of N members
 * (default 100,000; `member-match synth`, so about 10 % more rows: dental coverages), imports it into a throwaway database, then imports it again (the idempotent path: every row
 * unchanged, nothing written). Prints rows, seconds, rows/s and peak RSS for each run. The target is
 * 100,000 rows in under 30 s.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase } from '../src/db/database.js';
import type { ImportSummary } from '../src/members/roster-format/errors.js';
import { importRoster } from '../src/members/roster-import.js';
import { runSynth } from '../tools/synth/index.js';

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
  try {
    const summary = await run();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    peak = Math.max(peak, process.memoryUsage().rss);
    const { errors, ...counts } = summary;
    console.log(
      `${label}: ${summary.rows} rows in ${seconds.toFixed(2)} s = ${Math.round(summary.rows / seconds)} rows/s; ` +
        `peak RSS ${mib(peak)} (start ${mib(baseline)}); ${JSON.stringify(counts)}`,
    );
    if (errors.length > 0) console.log(`  first errors: ${JSON.stringify(errors.slice(0, 5))}`);
    return summary;
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-import-'));
  const file = path.join(dir, 'roster.csv');
  const db = await openDatabase(`${server}/${dbName}`, 4);
  try {
    const writeStarted = Date.now();
    await runSynth({ members: rows, queries: 0, seed: 42, out: dir });
    console.log(`synthetic roster: ${rows} members, ${mib((await stat(file)).size)}, written in ${((Date.now() - writeStarted) / 1000).toFixed(2)} s`);

    const first = await timed('import', () => importRoster(db, file, { memberIdentifierSystem }));
    const again = await timed('re-import (idempotent)', () => importRoster(db, file, { memberIdentifierSystem }));
    if (again.unchanged !== first.rows - first.rejected) console.log('WARNING: the re-import was not all unchanged');

    const counts = await db
      .selectNoFrom((eb) => [
        eb.selectFrom('members').select(eb.fn.countAll<string>().as('n')).as('members'),
        eb.selectFrom('coverages').select(eb.fn.countAll<string>().as('n')).as('coverages'),
        eb.selectFrom('member_identifiers').select(eb.fn.countAll<string>().as('n')).as('identifiers'),
      ])
      .executeTakeFirstOrThrow();
    console.log(`tables: ${JSON.stringify(counts)}`);
  } finally {
    await db.destroy();
    const admin = new pg.Client({ connectionString: `${server}/postgres` });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

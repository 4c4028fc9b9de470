/**
 * npm run bench:audit [-- --seconds S] [--concurrency 1,4,8,16] — the audit chain's lock (issue 13): every
 * decision appends its audit event under one advisory lock held until its transaction commits
 * (src/audit/audit-trail.ts), so appends are serialised across all processes. This measures, against a throwaway
 * database, how many transactions per second can append one event each with C in flight, and next to it, in the
 * same run, the same transactions writing the same row to an identical table without the lock and the chain (the
 * "bare" figure: what Postgres and this machine allow without the serialisation point), with the ratio.
 * Prints the machine's load average before it starts.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { appendAuditEvent } from '../src/audit/audit-trail.js';
import { configureAuditTrail } from '../src/audit/settings.js';
import { dropDatabase, openDatabase, type Db, type Tx } from '../src/db/database.js';
import { printLoad, printMachine } from './baseline.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '1,4,8,16' } } });
const seconds = Number(values.seconds);
const levels = values.concurrency.split(',').map(Number);
const server = process.env.BENCH_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
const dbName = `mm_bench_audit_${randomBytes(4).toString('hex')}`;

const event = { operation: 'member-match', outcome: 'success' as const, httpStatus: 200, reasonCode: 'matched', memberRef: '00000000-0000-0000-0000-000000000000', details: { bench: true } };

/** Transactions per second over `seconds`, C loops each running `work` in a transaction; p50/p99 in ms. */
async function run(db: Db, concurrency: number, work: (trx: Tx) => Promise<void>) {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        await db.transaction().execute(work);
        latencies.push(performance.now() - started);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { perSecond: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
}

async function main(): Promise<void> {
  printMachine();
  configureAuditTrail({ key: randomBytes(32).toString('base64url'), keyFile: undefined, stateDir: undefined, checkpointFile: undefined, checkpointIntervalSeconds: 300 });
  const db = await openDatabase(`${server}/${dbName}`, Math.max(...levels) + 2);
  try {
    // The same columns and indexes, no lock, no chain: the row is written with the hash fields left as they come.
    await sql`CREATE TABLE audit_events_plain (LIKE audit_events INCLUDING DEFAULTS INCLUDING INDEXES)`.execute(db);
    await sql`CREATE SEQUENCE audit_events_plain_seq OWNED BY audit_events_plain.seq`.execute(db);
    await sql`ALTER TABLE audit_events_plain ALTER seq SET DEFAULT nextval('audit_events_plain_seq')`.execute(db);
    for (const c of levels) {
      const chained = await run(db, c, (trx) => appendAuditEvent(trx, event));
      const plain = await run(db, c, async (trx) => {
        await sql`INSERT INTO audit_events_plain (event_id, recorded_at, operation, outcome, http_status, reason_code, member_ref, details, prev_hash, hash)
          VALUES (gen_random_uuid(), now(), 'member-match', 'success', 200, 'matched', ${event.memberRef}, '{"bench":true}', ${randomBytes(32).toString('hex')}, ${randomBytes(32).toString('hex')})`.execute(trx);
      });
      console.log(
        `${String(c).padStart(2)} in flight: chained (lock) ${chained.perSecond.toFixed(0)} tx/s, p50 ${chained.p50.toFixed(1)} ms, p99 ${chained.p99.toFixed(1)} ms; ` +
          `same row without lock/chain ${plain.perSecond.toFixed(0)} tx/s, p50 ${plain.p50.toFixed(1)} ms, p99 ${plain.p99.toFixed(1)} ms; ratio ${(chained.perSecond / plain.perSecond).toFixed(2)}`,
      );
    }
    printLoad('end');
  } finally {
    await db.destroy();
    await dropDatabase(`${server}/${dbName}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

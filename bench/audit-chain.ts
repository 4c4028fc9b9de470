/**
 * npm run bench:audit [-- --seconds S] [--concurrency 1,4,8,16] — the audit trail's write path (issue 13). Until
 * migration 0017 every decision appended its event under one advisory lock held until its transaction committed,
 * which serialised appends across all processes; now a transaction inserts its event with its own MAC and no lock,
 * and the sealer chains committed events in rounds (src/audit/sealer.ts). This measures, against a throwaway
 * database, how many transactions per second can append one event each with C in flight, with the sealer running
 * beside them as it does in the service, and next to it, in the same run, the same transactions writing the same
 * row to an identical table without trigger, MAC or chain (the "bare" figure: what Postgres and this machine allow),
 * with the ratio; then how long the sealer took to chain everything appended. Prints the machine's load average
 * before it starts.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { appendAuditEvent, verifyAuditChain } from '../src/audit/audit-trail.js';
import { sealAuditEvents, startAuditSealer } from '../src/audit/sealer.js';
import { createLogger } from '../src/logger.js';
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
    // The same columns and indexes, no trigger, MAC or chain: the row is written with the hash fields as they come.
    await sql`CREATE TABLE audit_events_plain (LIKE audit_events INCLUDING DEFAULTS INCLUDING INDEXES)`.execute(db);
    await sql`CREATE SEQUENCE audit_events_plain_seq OWNED BY audit_events_plain.seq`.execute(db);
    await sql`ALTER TABLE audit_events_plain ALTER seq SET DEFAULT nextval('audit_events_plain_seq')`.execute(db);
    for (const c of levels) {
      const sealer = startAuditSealer(db, createLogger('warn'));
      const chained = await run(db, c, (trx) => appendAuditEvent(trx, event));
      await sealer.stop();
      const started = performance.now();
      await sealAuditEvents(db, { wait: true });
      const drained = performance.now() - started;
      const plain = await run(db, c, async (trx) => {
        await sql`INSERT INTO audit_events_plain (event_id, recorded_at, operation, outcome, http_status, reason_code, member_ref, details, prev_hash, hash)
          VALUES (gen_random_uuid(), now(), 'member-match', 'success', 200, 'matched', ${event.memberRef}, '{"bench":true}', ${randomBytes(32).toString('hex')}, ${randomBytes(32).toString('hex')})`.execute(trx);
      });
      console.log(
        `${String(c).padStart(2)} in flight: appended (sealed chain) ${chained.perSecond.toFixed(0)} tx/s, p50 ${chained.p50.toFixed(1)} ms, p99 ${chained.p99.toFixed(1)} ms; ` +
          `same row bare ${plain.perSecond.toFixed(0)} tx/s, p50 ${plain.p50.toFixed(1)} ms, p99 ${plain.p99.toFixed(1)} ms; ratio ${(chained.perSecond / plain.perSecond).toFixed(2)}; ` +
          `left to seal after the run: ${drained.toFixed(0)} ms`,
      );
    }
    const verified = await verifyAuditChain(db, { checkpointFiles: [] });
    console.log(`audit verify: ${verified.ok ? `intact, ${verified.events} events` : `broken: ${verified.message}`}`);
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

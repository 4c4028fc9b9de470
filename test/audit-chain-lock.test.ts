import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvent, CHAIN_LOCK_KEY, verifyAuditChain } from '../src/audit/audit-trail.js';
import { configureAuditTrail } from '../src/audit/settings.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * The audit chain's lock and head are taken in one statement (`audit_chain_lock_head()`, migration 0016): the
 * lock is still the chain's advisory lock, held until the appending transaction ends, and concurrent appenders
 * still make one unbroken chain.
 */
let tdb: TestDatabase;
beforeAll(async () => {
  configureAuditTrail({ key: randomBytes(32).toString('base64url'), keyFile: undefined, stateDir: undefined, checkpointFile: undefined, checkpointIntervalSeconds: 300 });
  tdb = await createTestDatabase();
});
afterAll(() => tdb?.drop());

describe('audit chain lock', () => {
  it('is held by an appending transaction until it ends, and makes a waiting appender wait', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const holding = new Promise<void>((resolve) => (appended = resolve));
    const first = tdb.db.transaction().execute(async (trx) => {
      await appendAuditEvent(trx, { operation: 'lock-test', outcome: 'success', reasonCode: 'first' });
      appended();
      await released;
    });
    await holding;
    const locks = await sql<{ objid: string }>`SELECT objid::text FROM pg_locks WHERE locktype = 'advisory' AND granted`.execute(tdb.db);
    expect(locks.rows.map((r) => Number(r.objid))).toContain(CHAIN_LOCK_KEY);
    let secondDone = false;
    const second = appendAuditEvent(tdb.db, { operation: 'lock-test', outcome: 'success', reasonCode: 'second' }).then(() => {
      secondDone = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(secondDone).toBe(false);
    release();
    await first;
    await second;
    const rows = await sql<{ reason_code: string }>`SELECT reason_code FROM audit_events WHERE operation = 'lock-test' ORDER BY seq`.execute(tdb.db);
    expect(rows.rows.map((r) => r.reason_code)).toEqual(['first', 'second']);
  });

  it('keeps one unbroken chain under concurrent appenders', async () => {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        tdb.db.transaction().execute(async (trx) => {
          await appendAuditEvent(trx, { operation: 'lock-test', outcome: 'success', reasonCode: `c${i}` });
        }),
      ),
    );
    const result = await verifyAuditChain(tdb.db, { checkpointFiles: [] });
    expect(result).toMatchObject({ ok: true });
    expect(result.events).toBeGreaterThanOrEqual(42);
  });
});

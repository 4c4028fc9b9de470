import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvent, verifyAuditChain } from '../src/audit/audit-trail.js';
import { behindTheTriggers, createTestDatabase, type TestDatabase } from './support/database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  // Concurrent writers must still produce one unbroken chain.
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      appendAuditEvent(database.db, { operation: 'member-match', outcome: i % 3 ? 'success' : 'failure', reasonCode: 'test', details: { i, nested: { b: 1, a: [1, 2] } } }),
    ),
  );
});
afterAll(async () => {
  await database?.drop();
});

describe('audit trail', () => {
  it('verifies an intact chain written by concurrent requests', async () => {
    expect(await verifyAuditChain(database.db)).toEqual({ ok: true, events: 20 });
  });

  it('refuses UPDATE, DELETE and TRUNCATE', async () => {
    await expect(sql`UPDATE audit_events SET reason_code = 'x' WHERE seq = 3`.execute(database.db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_events WHERE seq = 3`.execute(database.db)).rejects.toThrow(/append-only/);
    await expect(sql`TRUNCATE audit_events`.execute(database.db)).rejects.toThrow(/append-only/);
  });

  it('names the first row altered behind the trigger’s back', async () => {
    const third = await database.db.selectFrom('audit_events').select('seq').orderBy('seq').offset(2).limit(1).executeTakeFirstOrThrow();
    await behindTheTriggers(database.db, async (conn) => {
      await sql`UPDATE audit_events SET reason_code = 'rewritten' WHERE seq = ${third.seq}::bigint`.execute(conn);
    });
    expect(await verifyAuditChain(database.db)).toMatchObject({ ok: false, firstBrokenSeq: third.seq, problem: 'hash-mismatch' });
  });
});

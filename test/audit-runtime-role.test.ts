import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvent, verifyAuditChain } from '../src/audit/audit-trail.js';
import { loadConfig } from '../src/config.js';
import { grantRuntimeRole, openRuntimeDatabase, RUNTIME_ROLE, type Db } from '../src/db/database.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { startTestService } from './support/service.js';

/** The service runs as a role that may append to the audit trail and read it, and nothing more (docs/audit.md). */

let database: TestDatabase;
let runtime: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  // Zero configuration: the runtime connection is DATABASE_URL with the runtime role as its user.
  runtime = await openRuntimeDatabase(loadConfig({ DATABASE_URL: database.url }), 2);
  await appendAuditEvent(runtime, { operation: 'member-match', outcome: 'success', reasonCode: 'matched' });
  await appendAuditEvent(runtime, { operation: 'member-match', outcome: 'failure', reasonCode: 'no-match' });
});
afterAll(async () => {
  await runtime?.destroy();
  await database?.drop();
});

describe('the runtime database role', () => {
  it('appends and reads audit events', async () => {
    const { rows } = await sql<{ user: string }>`SELECT current_user AS user`.execute(runtime);
    expect(rows[0]?.user).toBe(RUNTIME_ROLE);
    expect(await runtime.selectFrom('audit_events').select('seq').execute()).toHaveLength(2);
    expect(await verifyAuditChain(runtime)).toMatchObject({ ok: true, events: 2 });
  });

  it('is refused UPDATE, DELETE and TRUNCATE of audit rows', async () => {
    await expect(sql`UPDATE audit_events SET reason_code = 'x'`.execute(runtime)).rejects.toThrow(/permission denied for table audit_events/);
    await expect(sql`DELETE FROM audit_events`.execute(runtime)).rejects.toThrow(/permission denied for table audit_events/);
    await expect(sql`TRUNCATE audit_events`.execute(runtime)).rejects.toThrow(/permission denied for table audit_events/);
    for (const [table, column] of [['audit_chain', 'keyed_from_seq'], ['audit_checkpoints', 'seq']] as const) {
      await expect(sql`UPDATE ${sql.table(table)} SET ${sql.ref(column)} = 1`.execute(runtime)).rejects.toThrow(/permission denied/);
      await expect(sql`DELETE FROM ${sql.table(table)}`.execute(runtime)).rejects.toThrow(/permission denied/);
      await expect(sql`TRUNCATE ${sql.table(table)}`.execute(runtime)).rejects.toThrow(/permission denied/);
    }
  });

  it('cannot queue an event for sealing by hand, nor choose an event’s seq', async () => {
    await expect(sql`INSERT INTO audit_pending (event_seq) VALUES (1)`.execute(runtime)).rejects.toThrow(/permission denied for table audit_pending/);
    await expect(sql`UPDATE audit_pending SET event_seq = 2`.execute(runtime)).rejects.toThrow(/permission denied for table audit_pending/);
    await expect(
      sql`INSERT INTO audit_events (seq, event_id, recorded_at, operation, outcome, details, hash)
          VALUES (1000000, gen_random_uuid(), now(), 'forged', 'success', '{}', 'x')`.execute(runtime),
    ).rejects.toThrow(/permission denied for table audit_events/);
  });

  it('is refused SET session_replication_role, and cannot disable, drop or add triggers', async () => {
    await expect(sql`SET session_replication_role = replica`.execute(runtime)).rejects.toThrow(/permission denied to set parameter "session_replication_role"/);
    await expect(sql`ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete`.execute(runtime)).rejects.toThrow(/must be owner/);
    await expect(sql`DROP TRIGGER audit_events_no_truncate ON audit_events`.execute(runtime)).rejects.toThrow(/must be owner/);
    await expect(sql`SELECT setval('audit_events_seq_seq', 1)`.execute(runtime)).rejects.toThrow(/permission denied/);
    await expect(sql`SET ROLE postgres`.execute(runtime)).rejects.toThrow(/permission denied/);
  });

  it('keeps the working tables writable (the rest of the service works as before)', async () => {
    await runtime.insertInto('service_secrets').values({ name: 'runtime-role-test', value: 'v' }).execute();
    await runtime.updateTable('service_secrets').set({ value: 'w' }).where('name', '=', 'runtime-role-test').execute();
    await runtime.deleteFrom('service_secrets').where('name', '=', 'runtime-role-test').execute();
  });

  it('grants are idempotent and safe when several processes start together', async () => {
    await Promise.all([grantRuntimeRole(database.db), grantRuntimeRole(database.db), grantRuntimeRole(database.db)]);
    await expect(sql`DELETE FROM audit_events`.execute(runtime)).rejects.toThrow(/permission denied/);
  });

  it('the service refuses to run as a role that could rewrite the audit trail', async () => {
    await expect(openRuntimeDatabase({ databaseUrl: database.url, appDatabaseUrl: database.url, migrateOnStart: false })).rejects.toThrow(
      /could rewrite the audit trail \(superuser, .*owns audit_events, UPDATE, DELETE, TRUNCATE, TRIGGER\)/,
    );
  });

  it('the service started with no database configuration runs as the runtime role', async () => {
    const ts = await startTestService();
    try {
      const { rows } = await sql<{ user: string }>`SELECT current_user AS user`.execute(ts.service.deps.db);
      expect(rows[0]?.user).toBe(RUNTIME_ROLE);
    } finally {
      await ts.stop();
    }
  });
});

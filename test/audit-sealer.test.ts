import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvent, verifyAuditChain } from '../src/audit/audit-trail.js';
import { CHAIN_LOCK_KEY } from '../src/audit/chain.js';
import { sealAuditEvents, sealingRounds, takePendingEvents } from '../src/audit/sealer.js';
import { configureAuditTrail } from '../src/audit/settings.js';
import { keyedChainHash, GENESIS_HASH } from '../src/audit/chain.js';
import { readChainInfo, signCheckpoint } from '../src/audit/checkpoints.js';
import { auditTrailSettings } from '../src/audit/settings.js';
import { folderMigrationProvider, migrateToLatest, type Db } from '../src/db/database.js';
import { behindTheTriggers, createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * The sealed audit chain (migration 0017, src/audit/sealer.ts): a request appends its event with no lock, and
 * the sealer chains committed events, one keyed link each, one sealer at a time.
 */
const databases: TestDatabase[] = [];
beforeAll(() => {
  configureAuditTrail({ key: randomBytes(32).toString('base64url'), keyFile: undefined, stateDir: undefined, checkpointFile: undefined, checkpointIntervalSeconds: 300 });
});
afterAll(async () => {
  for (const database of databases) await database.drop();
});
async function freshDb(): Promise<Db> {
  const database = await createTestDatabase();
  databases.push(database);
  return database.db;
}
/** A one-shot signal between a held-open transaction and the test. */
function signal(): { fired: Promise<void>; fire(): void } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fired, fire };
}
const event = (reasonCode: string) => ({ operation: 'seal-test', outcome: 'success' as const, reasonCode });
async function count(db: Db, table: 'audit_events' | 'audit_chain_links' | 'audit_pending'): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('audit sealing', () => {
  it('an idle sealer asks whether anything waits instead of opening a transaction, and seals what arrives', async () => {
    const db = await freshDb();
    let transactions = 0;
    // The same database, counting the transactions the rounds open (each: BEGIN, the lock, the take, COMMIT).
    const counted = new Proxy(db, {
      get(target, key) {
        if (key === 'transaction') transactions++;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const round = sealingRounds(counted);
    await appendAuditEvent(db, event('first'));
    expect(await round()).toBe(1);
    expect(await round()).toBe(0); // a full round that finds nothing
    const afterFull = transactions;
    expect(await round()).toBe(0);
    expect(await round()).toBe(0);
    expect(transactions).toBe(afterFull);
    await appendAuditEvent(db, event('second'));
    expect(await round()).toBe(1);
    expect(transactions).toBe(afterFull + 1);
    expect(await count(db, 'audit_chain_links')).toBe(2);
    expect(await count(db, 'audit_pending')).toBe(0);
  });

  it('an append takes no lock: it commits while another session holds the chain’s lock', async () => {
    const db = await freshDb();
    const released = signal();
    const holding = signal();
    const sealer = db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`.execute(trx);
      holding.fire();
      await released.fired;
    });
    await holding.fired;
    await Promise.all(Array.from({ length: 5 }, (_, i) => appendAuditEvent(db, event(`free${i}`))));
    expect(await count(db, 'audit_events')).toBe(5);
    expect(await count(db, 'audit_pending')).toBe(5);
    // A sealing round that does not wait leaves the events to the process that holds the lock.
    expect(await sealAuditEvents(db)).toBe(0);
    released.fire();
    await sealer;
    expect(await sealAuditEvents(db)).toBe(5);
    expect(await count(db, 'audit_pending')).toBe(0);
    expect(await verifyAuditChain(db, { checkpointFiles: [] })).toEqual({ ok: true, events: 5 });
  });

  it('concurrent appenders and racing sealers make one chain, every event linked exactly once', async () => {
    const db = await freshDb();
    let appending = true;
    const sealers = Array.from({ length: 3 }, async () => {
      while (appending) await sealAuditEvents(db);
    });
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => db.transaction().execute((trx) => appendAuditEvent(trx, event(`c${i}`)))),
    );
    appending = false;
    await Promise.all(sealers);
    expect(await verifyAuditChain(db, { checkpointFiles: [] })).toEqual({ ok: true, events: 60 });
    const links = await db.selectFrom('audit_chain_links').select(['position', 'event_seq']).orderBy('position').execute();
    expect(links.map((l) => Number(l.position))).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(new Set(links.map((l) => l.event_seq)).size).toBe(60);
  });

  it('chains an event committed late after the events committed before it (the chain’s order is the sealing order)', async () => {
    const db = await freshDb();
    const committing = signal();
    const inserted = signal();
    const slow = db.transaction().execute(async (trx) => {
      await appendAuditEvent(trx, event('early-seq-late-commit'));
      inserted.fire();
      await committing.fired;
    });
    await inserted.fired;
    await appendAuditEvent(db, event('late-seq-early-commit'));
    expect(await sealAuditEvents(db)).toBe(1);
    committing.fire();
    await slow;
    expect(await sealAuditEvents(db)).toBe(1);
    const order = await sql<{ reason_code: string; seq: string }>`
      SELECT e.reason_code, e.seq FROM audit_chain_links l JOIN audit_events e ON e.seq = l.event_seq ORDER BY l.position`.execute(db);
    expect(order.rows.map((r) => r.reason_code)).toEqual(['late-seq-early-commit', 'early-seq-late-commit']);
    expect(Number(order.rows[0]!.seq)).toBeGreaterThan(Number(order.rows[1]!.seq));
    expect(await verifyAuditChain(db, { checkpointFiles: [] })).toMatchObject({ ok: true, events: 2 });
  });

  it('verify holds an event not yet chained to its own MAC', async () => {
    const db = await freshDb();
    await appendAuditEvent(db, event('waiting'));
    expect(await verifyAuditChain(db, { checkpointFiles: [], seal: false })).toEqual({ ok: true, events: 1, pending: 1 });
    await behindTheTriggers(db, async (conn) => {
      await sql`UPDATE audit_events SET reason_code = 'rewritten'`.execute(conn);
    });
    expect(await verifyAuditChain(db, { checkpointFiles: [], seal: false })).toMatchObject({ ok: false, problem: 'hash-mismatch' });
  });

  it('verify finds an event taken out of the sealer’s queue, a chained event removed, and a link removed', async () => {
    const unqueued = await freshDb();
    await appendAuditEvent(unqueued, event('a'));
    const [row] = await unqueued.selectFrom('audit_events').select('seq').execute();
    await sql`DELETE FROM audit_pending`.execute(unqueued);
    expect(await verifyAuditChain(unqueued, { checkpointFiles: [] })).toMatchObject({ ok: false, problem: 'unlinked', firstBrokenSeq: row!.seq });

    const behind = (db: Db, statement: string) => behindTheTriggers(db, async (conn) => void (await sql.raw(statement).execute(conn)));
    const eventGone = await freshDb();
    for (const reason of ['a', 'b', 'c']) await appendAuditEvent(eventGone, event(reason));
    await sealAuditEvents(eventGone);
    await behind(eventGone, `DELETE FROM audit_events WHERE reason_code = 'b'`);
    expect(await verifyAuditChain(eventGone, { checkpointFiles: [] })).toMatchObject({ ok: false, problem: 'event-missing', firstBrokenSeq: '2' });

    const linkGone = await freshDb();
    for (const reason of ['a', 'b', 'c']) await appendAuditEvent(linkGone, event(reason));
    await sealAuditEvents(linkGone);
    await behind(linkGone, `DELETE FROM audit_chain_links WHERE position = 2`);
    expect(await verifyAuditChain(linkGone, { checkpointFiles: [] })).toMatchObject({ ok: false, problem: 'prev-hash-mismatch', firstBrokenSeq: '3' });
  });

  it('a sealing round reads the links of the events it takes, not the whole chain', async () => {
    // The statement once asked EXISTS of every taken event. Postgres planned that as a hashed subplan over every
    // link of the chain on the bench's index, and here as a scan of the links table per event: either way a
    // round's cost grew with the audit trail's whole history (docs/benchmarks.md, sixth session). 5,000 chained
    // events and 2,500 queued ones, vacuumed and analysed.
    const db = await freshDb();
    const addEvents = (n: number) => sql`
      INSERT INTO audit_events (event_id, recorded_at, operation, outcome, hash)
      SELECT gen_random_uuid(), now(), 'seal-test', 'success', md5(random()::text) || md5(random()::text) FROM generate_series(1, ${n})`.execute(db);
    await addEvents(5_000);
    expect(await sealAuditEvents(db)).toBe(5_000);
    await addEvents(2_500);
    await sql`VACUUM (ANALYZE) audit_pending, audit_chain_links, audit_events`.execute(db);
    const limit = 2_000;
    const linkScans = await db.connection().execute(async (conn) => {
      await sql`BEGIN`.execute(conn);
      try {
        const statement = takePendingEvents(limit).compile(conn);
        const { rows } = await conn.executeQuery<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>({ ...statement, sql: `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.sql}` });
        return scansOf(rows[0]!['QUERY PLAN'][0].Plan, 'audit_chain_links');
      } finally {
        await sql`ROLLBACK`.execute(conn);
      }
    });
    // One index probe per taken event: no scan of the table, no hash of all its links.
    expect(linkScans.length).toBeGreaterThan(0);
    for (const scan of linkScans) {
      expect(['Index Scan', 'Index Only Scan']).toContain(scan['Node Type']);
      expect(scan['Actual Rows'] * scan['Actual Loops']).toBeLessThanOrEqual(limit);
    }
  });

  it('refuses UPDATE, DELETE and TRUNCATE of the links', async () => {
    const db = await freshDb();
    await appendAuditEvent(db, event('a'));
    await sealAuditEvents(db);
    await expect(sql`UPDATE audit_chain_links SET link = 'x'`.execute(db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_chain_links`.execute(db)).rejects.toThrow(/append-only/);
    await expect(sql`TRUNCATE audit_chain_links`.execute(db)).rejects.toThrow(/append-only/);
  });

  it('continues a trail written before migration 0017: the first link follows the last inline row, and an old checkpoint still anchors', async () => {
    const db = await freshDb();
    const migrator = new Migrator({ db, provider: folderMigrationProvider });
    const down = await migrator.migrateTo('0016_audit_chain_head');
    expect(down.results?.at(-1)).toMatchObject({ migrationName: '0017_audit_sealed_chain', direction: 'Down', status: 'Success' });
    // Three rows as the inline keyed chain wrote them (migrations 0012 to 0016).
    const { keys } = auditTrailSettings();
    let prevHash = GENESIS_HASH;
    for (const reason of ['old1', 'old2', 'old3']) {
      const fields = {
        event_id: randomUUID(), recorded_at: new Date().toISOString(), request_id: null, source_ip: null, actor_class: null, client_id: null,
        organization: null, token_jti: null, purpose_of_use: null, operation: 'seal-test', outcome: 'success' as const, http_status: null,
        reason_code: reason, consent_decision: null, member_ref: null, details: {},
      };
      const hash = keyedChainHash(keys.chainKey, prevHash, fields);
      await db.insertInto('audit_events').values({ ...fields, details: JSON.stringify(fields.details), prev_hash: prevHash, hash }).execute();
      prevHash = hash;
    }
    const chain = (await readChainInfo(db))!;
    const oldCheckpoint = signCheckpoint(keys, { ...chain, seq: '3', hash: prevHash, at: new Date().toISOString() });
    await migrateToLatest(db);
    for (const reason of ['new1', 'new2']) await appendAuditEvent(db, event(reason));
    const checkpointFile = `${process.env.XDG_STATE_HOME}/old-checkpoint.jsonl`;
    writeFileSync(checkpointFile, `${JSON.stringify(oldCheckpoint)}\n`);
    expect(await verifyAuditChain(db, { checkpointFiles: [checkpointFile] })).toEqual({ ok: true, events: 5, checkpoint: { seq: '3', at: oldCheckpoint.at } });
    const links = await db.selectFrom('audit_chain_links').select(['position', 'prev_link']).orderBy('position').execute();
    expect(links.map((l) => l.position)).toEqual(['4', '5']);
    expect(links[0]!.prev_link).toBe(prevHash);
  });

  it('skips a queue row for an event already chained, an inline row or a missing event, and goes on sealing', async () => {
    const db = await freshDb();
    await appendAuditEvent(db, event('first'));
    expect(await sealAuditEvents(db)).toBe(1);
    const [first] = await db.selectFrom('audit_events').select('seq').execute();
    // As the owner (the runtime role may not insert here): the chained event queued again, and a seq with no event.
    await sql`INSERT INTO audit_pending (event_seq) VALUES (${first!.seq}::bigint), (999999)`.execute(db);
    await appendAuditEvent(db, event('second'));
    expect(await sealAuditEvents(db)).toBe(3);
    expect(await count(db, 'audit_chain_links')).toBe(2);
    expect(await verifyAuditChain(db, { checkpointFiles: [] })).toEqual({ ok: true, events: 2 });
  });

  it('refuses an inline row after the links began, and verify finds a copied event', async () => {
    const db = await freshDb();
    await appendAuditEvent(db, event('genuine'));
    await expect(
      sql`INSERT INTO audit_events (event_id, recorded_at, operation, outcome, details, prev_hash, hash)
          VALUES (gen_random_uuid(), now(), 'forged', 'success', '{}', ${GENESIS_HASH}, 'x')`.execute(db),
    ).rejects.toThrow(/audit_events_inline_rows_end/);
    // The owner drops the unique constraints and inserts a copy of the genuine row: its MAC is valid.
    await sql`ALTER TABLE audit_events DROP CONSTRAINT audit_events_event_id_key, DROP CONSTRAINT audit_events_hash_key`.execute(db);
    await sql`
      INSERT INTO audit_events (event_id, recorded_at, request_id, source_ip, actor_class, client_id, organization, token_jti,
        purpose_of_use, operation, outcome, http_status, reason_code, consent_decision, member_ref, details, prev_hash, hash)
      SELECT event_id, recorded_at, request_id, source_ip, actor_class, client_id, organization, token_jti,
        purpose_of_use, operation, outcome, http_status, reason_code, consent_decision, member_ref, details, prev_hash, hash
      FROM audit_events`.execute(db);
    const result = await verifyAuditChain(db, { checkpointFiles: [] });
    expect(result).toMatchObject({ ok: false, problem: 'duplicate-event' });
  });

  it('cannot be undone once events are chained', async () => {
    const db = await freshDb();
    await appendAuditEvent(db, event('chained'));
    await sealAuditEvents(db);
    const migrator = new Migrator({ db, provider: folderMigrationProvider });
    const down = await migrator.migrateTo('0016_audit_chain_head');
    expect(String(down.error)).toMatch(/cannot be undone once events are chained/);
    expect(await count(db, 'audit_chain_links')).toBe(1);
  });
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}
/** The nodes of a plan that read `table`. */
function scansOf(node: PlanNode, table: string): PlanNode[] {
  return [...(node['Relation Name'] === table ? [node] : []), ...(node.Plans ?? []).flatMap((child) => scansOf(child, table))];
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { appendAuditEvent, verifyAuditChain } from '../src/audit/audit-trail.js';
import { deriveAuditKeys } from '../src/audit/audit-key.js';
import { checkpointSignatureValid, takeCheckpoint, type AuditCheckpoint } from '../src/audit/checkpoints.js';
import { configureAuditTrail } from '../src/audit/settings.js';
import type { Db } from '../src/db/database.js';
import { behindTheTriggers, createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * The anchored audit trail (docs/audit.md): the keyed chain and the signed checkpoints catch what the plain
 * hash chain could not — the newest rows cut off, and a stretch rewritten with the hashes recomputed.
 */

const stateDir = mkdtempSync(path.join(tmpdir(), 'mm-audit-anchoring-'));
const checkpointFile = path.join(stateDir, 'checkpoints.jsonl');
const settings = configureAuditTrail({ key: randomBytes(32).toString('base64url'), keyFile: undefined, stateDir, checkpointFile, checkpointIntervalSeconds: 300 });

const logLines: string[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  }),
);

const databases: TestDatabase[] = [];
async function trailOf(events: number): Promise<Db> {
  const database = await createTestDatabase();
  databases.push(database);
  for (let i = 0; i < events; i += 1) {
    await appendAuditEvent(database.db, { operation: 'member-match', outcome: 'success', reasonCode: 'matched', details: { i } });
  }
  return database.db;
}

/** The chain's positions, in order (the links': every event here is chained by its link). */
async function seqs(db: Db): Promise<string[]> {
  return (await db.selectFrom('audit_chain_links').select('position').orderBy('position').execute()).map((r) => r.position);
}

/** As the attacker: removes the links from `position` on (`>=`) or after it (`>`), and the events they chain. */
async function cutFrom(conn: Db, op: '>' | '>=', position: string): Promise<void> {
  const cut = sql`FROM audit_chain_links WHERE position ${sql.raw(op)} ${position}::bigint`;
  await sql`DELETE FROM audit_events WHERE seq IN (SELECT event_seq ${cut})`.execute(conn);
  await sql`DELETE ${cut}`.execute(conn);
}

afterAll(async () => {
  for (const database of databases) await database.drop();
});

describe('signed checkpoints', () => {
  let db: Db;
  let checkpoint: AuditCheckpoint | undefined;
  beforeAll(async () => {
    db = await trailOf(5);
    checkpoint = await takeCheckpoint(db, logger, { settings });
  });

  it('are written to the checkpoint file and the log, signed, naming the head', async () => {
    const head = (await seqs(db)).at(-1);
    expect(checkpoint).toMatchObject({ type: 'member-match.audit-checkpoint', seq: head });
    const fileLines = readFileSync(checkpointFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditCheckpoint);
    expect(fileLines).toContainEqual(checkpoint);
    const logged = logLines.map((l) => JSON.parse(l) as { msg: string; auditCheckpoint?: AuditCheckpoint }).filter((l) => l.msg === 'audit checkpoint');
    expect(logged.map((l) => l.auditCheckpoint)).toContainEqual(checkpoint);
    expect(checkpointSignatureValid(settings.keys, checkpoint!)).toBe(true);
    expect(checkpointSignatureValid(settings.keys, { ...checkpoint!, seq: String(Number(checkpoint!.seq) + 1) })).toBe(false);
    expect(await verifyAuditChain(db, { settings })).toEqual({ ok: true, events: 5, checkpoint: { seq: head, at: checkpoint!.at } });
  });

  it('are not taken again while the head has not moved, nor by a second process inside the interval', async () => {
    expect(await takeCheckpoint(db, logger, { settings })).toBeUndefined();
    await appendAuditEvent(db, { operation: 'member-match', outcome: 'success', reasonCode: 'matched' });
    expect(await takeCheckpoint(db, logger, { settings })).toBeUndefined();
    expect(await takeCheckpoint(db, logger, { settings, force: true })).toMatchObject({ seq: (await seqs(db)).at(-1) });
  });

  it('are found in a log file too (pino lines carry them under auditCheckpoint)', async () => {
    const logFile = path.join(stateDir, 'service.log');
    writeFileSync(logFile, `not json\n${logLines.join('\n')}\n`);
    const result = await verifyAuditChain(db, { settings, checkpointFiles: [logFile] });
    expect(result).toMatchObject({ ok: true, checkpoint: { seq: (await seqs(db)).at(-1) } });
  });
});

describe('audit verify detects', () => {
  it('truncating the newest audit rows (the head is before the checkpoint)', async () => {
    const db = await trailOf(10);
    await takeCheckpoint(db, logger, { settings });
    const all = await seqs(db);
    await behindTheTriggers(db, (conn) => cutFrom(conn, '>', all[6]!));
    // The plain chain that is left is intact: only the checkpoint can tell.
    const result = await verifyAuditChain(db, { settings });
    expect(result).toMatchObject({ ok: false, problem: 'truncated', firstBrokenSeq: String(BigInt(all[6]!) + 1n) });
    if (!result.ok) expect(result.message).toContain(`vouches for ${all[9]}`);
  });

  it('truncating the newest rows and appending new ones (the checkpointed row holds another hash)', async () => {
    const db = await trailOf(6);
    await takeCheckpoint(db, logger, { settings });
    const all = await seqs(db);
    await behindTheTriggers(db, async (conn) => {
      await cutFrom(conn, '>=', all[4]!);
      await sql`SELECT setval('audit_events_seq_seq', ${all[3]}::bigint)`.execute(conn);
    });
    // Through the service's own code, with the key: a chain that is valid, but not the one checkpointed.
    for (let i = 0; i < 3; i += 1) await appendAuditEvent(db, { operation: 'member-match', outcome: 'failure', reasonCode: 'no-match' });
    expect(await verifyAuditChain(db, { settings })).toMatchObject({ ok: false, problem: 'checkpoint-mismatch', firstBrokenSeq: all[5] });
  });

  it('deleting a row from the middle and re-chaining every later link, renumbered, with a hash function of its own', async () => {
    const db = await trailOf(10);
    await takeCheckpoint(db, logger, { settings });
    const all = await seqs(db);
    await behindTheTriggers(db, async (conn) => {
      const gone = await conn.selectFrom('audit_chain_links').select('event_seq').where('position', '=', all[4]!).executeTakeFirstOrThrow();
      await sql`DELETE FROM audit_events WHERE seq = ${gone.event_seq}::bigint`.execute(conn);
      await sql`DELETE FROM audit_chain_links WHERE position = ${all[4]}::bigint`.execute(conn);
      const later = await conn.selectFrom('audit_chain_links').selectAll().where('position', '>', all[4]!).orderBy('position').execute();
      const before = await conn.selectFrom('audit_chain_links').select('link').where('position', '=', all[3]!).executeTakeFirstOrThrow();
      let prevLink = before.link;
      for (const row of later) {
        // Without the key: SHA-256 of what the keyed link covers.
        const link = createHash('sha256').update(`${prevLink}\n${row.event_seq}`).digest('hex');
        await sql`UPDATE audit_chain_links SET position = position - 1, prev_link = ${prevLink}, link = ${link} WHERE position = ${row.position}::bigint`.execute(conn);
        prevLink = link;
      }
    });
    const result = await verifyAuditChain(db, { settings });
    expect(result).toMatchObject({ ok: false, problem: 'hash-mismatch', firstBrokenSeq: all[4] });
    if (!result.ok) expect(result.message).toMatch(new RegExp(`^link ${all[4]} was altered, or re-chained without the audit key`));
    // Without any checkpoint the key alone catches it.
    expect(await verifyAuditChain(db, { settings, checkpointFiles: [path.join(stateDir, 'none.jsonl')] })).toMatchObject({
      ok: false,
      problem: 'hash-mismatch',
      firstBrokenSeq: all[4],
    });
  });

  it('moving the start of the keyed chain past the head to re-chain everything unkeyed', async () => {
    const db = await trailOf(4);
    await takeCheckpoint(db, logger, { settings });
    await behindTheTriggers(db, async (conn) => {
      await sql`UPDATE audit_chain SET keyed_from_seq = 1000000`.execute(conn);
    });
    expect(await verifyAuditChain(db, { settings })).toMatchObject({ ok: false, problem: 'chain-start-moved', firstBrokenSeq: '1' });
  });

  it('replacing the chain’s row to escape its checkpoints', async () => {
    const db = await trailOf(3);
    await takeCheckpoint(db, logger, { settings });
    await behindTheTriggers(db, async (conn) => {
      await sql`DELETE FROM audit_chain`.execute(conn);
      await sql`INSERT INTO audit_chain (keyed_from_seq, algorithm) VALUES (1000000, 'hmac-sha256')`.execute(conn);
    });
    expect(await verifyAuditChain(db, { settings })).toMatchObject({ ok: false, problem: 'chain-start-moved' });
  });

  it('a chain checked with another key, and says so', async () => {
    const db = await trailOf(3);
    await takeCheckpoint(db, logger, { settings });
    const other = { ...settings, keys: deriveAuditKeys(randomBytes(32).toString('base64url'), 'another key') };
    const result = await verifyAuditChain(db, { settings: other });
    expect(result).toMatchObject({ ok: false, problem: 'hash-mismatch' });
    if (!result.ok) expect(result.message).toContain(`checkpoints signed with key ${settings.keys.keyId} were found`);
  });
});

import { createHash, randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { AuditEventsTable } from '../db/schema.js';
import type { Db, DbOrTx, Tx } from '../db/database.js';
import { formatOrganization, type Actor } from '../identity/actor.js';
import { canonicalJson } from '../shared/canonical-json.js';

/**
 * The tamper-evident audit trail. Each event carries the hash of the one before it, so altering or removing
 * a row breaks the chain from there on; the table's triggers refuse UPDATE, DELETE and TRUNCATE besides.
 * Events hold references and codes, never demographics.
 */

export interface AuditEvent {
  requestId?: string | undefined;
  sourceIp?: string | undefined;
  actor?: Actor | undefined;
  /** The interaction or operation: `member-match`, `token`, `patient-read`, `patient-search`, … */
  operation: string;
  outcome: 'success' | 'failure';
  httpStatus?: number | undefined;
  /** Why: `matched`, `no-match`, `consent-expired`, `token-invalid`, … */
  reasonCode?: string | undefined;
  /** `permit`, or `deny:<reason>`, when a consent was judged. */
  consentDecision?: string | undefined;
  /** Internal member reference (members.id); never a member id or a name. */
  memberRef?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

export const GENESIS_HASH = '0'.repeat(64);
/** One chain, one writer at a time: the lock is held until the inserting transaction ends. */
const CHAIN_LOCK_KEY = 0x6d6d_a0d1;

/** The columns the hash chain covers: everything but the sequence number and the hashes themselves. */
type ChainedFields = Omit<Selectable<AuditEventsTable>, 'seq' | 'prev_hash' | 'hash' | 'recorded_at'> & { recorded_at: string };

/** Appends one event. Pass the transaction whose effect the event records, so both commit or neither. */
export async function appendAuditEvent(db: DbOrTx, event: AuditEvent): Promise<void> {
  await appendAuditEvents(db, [event]);
}

/**
 * Appends events in order, chained, with one lock and one insert: a batch chunk records each of its rows'
 * decisions in the transaction that writes them.
 */
export async function appendAuditEvents(db: DbOrTx, events: readonly AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (!db.isTransaction) {
    await (db as Db).transaction().execute((trx) => appendAuditEvents(trx, events));
    return;
  }
  const trx = db as Tx;
  await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`.execute(trx);
  const last = await trx.selectFrom('audit_events').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  let prevHash = last?.hash ?? GENESIS_HASH;
  const rows = [];
  for (const event of events) {
    const fields = chainedFields(event);
    const hash = chainHash(prevHash, fields);
    rows.push({ ...fields, details: JSON.stringify(fields.details), prev_hash: prevHash, hash });
    prevHash = hash;
  }
  // Inserted in order, so `seq` follows the chain.
  for (let i = 0; i < rows.length; i += 1_000) await trx.insertInto('audit_events').values(rows.slice(i, i + 1_000)).execute();
}

function chainedFields(event: AuditEvent): ChainedFields {
  return {
    event_id: randomUUID(),
    recorded_at: new Date().toISOString(),
    request_id: event.requestId ?? null,
    source_ip: event.sourceIp ?? null,
    actor_class: event.actor?.actorClass ?? null,
    client_id: event.actor?.clientId ?? null,
    organization: event.actor ? formatOrganization(event.actor.organization) : null,
    token_jti: event.actor?.tokenJti ?? null,
    purpose_of_use: event.actor?.purposeOfUse ?? null,
    operation: event.operation,
    outcome: event.outcome,
    http_status: event.httpStatus ?? null,
    reason_code: event.reasonCode ?? null,
    consent_decision: event.consentDecision ?? null,
    member_ref: event.memberRef ?? null,
    // The actor's subject and authentication protocol complete who-and-how (the columns hold class, client,
    // organisation and token id).
    details: event.actor
      ? {
          ...event.details,
          actorSubject: event.actor.subject,
          authProtocol: event.actor.protocol,
          ...(event.actor.delegationChain ? { delegationChain: event.actor.delegationChain } : {}),
        }
      : (event.details ?? {}),
  };
}

export function chainHash(prevHash: string, fields: ChainedFields): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(fields)).digest('hex');
}

export type ChainVerification =
  | { ok: true; events: number }
  | { ok: false; events: number; firstBrokenSeq: string; problem: 'hash-mismatch' | 'prev-hash-mismatch' };

/** Walks the chain in order, recomputing each hash; names the first row that does not fit. */
export async function verifyAuditChain(db: DbOrTx, batchSize = 5_000): Promise<ChainVerification> {
  let prevHash = GENESIS_HASH;
  let lastSeq = '0';
  let events = 0;
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where(sql<boolean>`seq > ${lastSeq}::bigint`)
      .orderBy('seq')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) return { ok: true, events };
    for (const row of rows) {
      events += 1;
      if (row.prev_hash !== prevHash) return { ok: false, events, firstBrokenSeq: row.seq, problem: 'prev-hash-mismatch' };
      const { seq: _seq, prev_hash: _prev, hash, recorded_at, ...rest } = row;
      const fields: ChainedFields = {
        ...rest,
        recorded_at: new Date(recorded_at).toISOString(),
        details: row.details as Record<string, unknown>,
      };
      if (chainHash(prevHash, fields) !== hash) {
        return { ok: false, events, firstBrokenSeq: row.seq, problem: 'hash-mismatch' };
      }
      prevHash = hash;
      lastSeq = row.seq;
    }
  }
}

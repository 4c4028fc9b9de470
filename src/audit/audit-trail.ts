import { createHash, createHmac, randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { AuditEventsTable } from '../db/schema.js';
import type { Db, DbOrTx, Tx } from '../db/database.js';
import { formatOrganization, type Actor } from '../identity/actor.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { findLatestCheckpoint, readChainInfo } from './checkpoints.js';
import { auditTrailSettings, type AuditTrailSettings } from './settings.js';

/**
 * The tamper-evident audit trail (docs/audit.md). Each event carries the hash of the one before it, so altering
 * or removing a row breaks the chain from there on; the table's triggers refuse UPDATE, DELETE and TRUNCATE
 * besides, and the service's runtime role may not change, remove or un-trigger rows at all. Since migration
 * 0012 each hash is an HMAC-SHA256 under the audit key, which is not in the database, so a rewritten stretch
 * cannot be re-chained; signed checkpoints of the head, kept outside the database, reveal a cut-off end.
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
/**
 * One chain, one writer at a time: the lock is held until the inserting transaction ends. Taken by
 * `audit_chain_lock_head()` (migration 0016), which holds this key.
 */
export const CHAIN_LOCK_KEY = 0x6d6d_a0d1;

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
  const { chainKey } = auditTrailSettings().keys;
  // Everything but the link is computed before the lock: the lock is held from here until the commit.
  const prepared = events.map((event) => {
    const fields = chainedFields(event);
    return { fields, text: canonicalJson(fields) };
  });
  // The lock and the chain's head in one statement (migration 0016): CHAIN_LOCK_KEY, then the newest hash.
  const head = await sql<{ head: string | null }>`SELECT audit_chain_lock_head() AS head`.execute(trx);
  let prevHash = head.rows[0]?.head ?? GENESIS_HASH;
  const rows = [];
  for (const { fields, text } of prepared) {
    // Every row appended since migration 0012 lies in the keyed part of the chain.
    const hash = keyedLink(chainKey, prevHash, text);
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

/** The link of rows written before the keyed chain began (before migration 0012): plain SHA-256. */
export function chainHash(prevHash: string, fields: ChainedFields): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(fields)).digest('hex');
}

/** The link of the keyed chain: HMAC-SHA256 under the audit key, over the same text. */
export function keyedChainHash(chainKey: Buffer, prevHash: string, fields: ChainedFields): string {
  return keyedLink(chainKey, prevHash, canonicalJson(fields));
}

function keyedLink(chainKey: Buffer, prevHash: string, canonicalText: string): string {
  return createHmac('sha256', chainKey).update(prevHash).update('\n').update(canonicalText).digest('hex');
}

export type ChainProblem =
  /** The row's hash is not the (keyed) hash of its content: changed, or re-chained without the key. */
  | 'hash-mismatch'
  /** The row does not link to the one before it: a row was removed or inserted. */
  | 'prev-hash-mismatch'
  /** The chain ends before the latest checkpoint's row: the newest rows were cut off. */
  | 'truncated'
  /** The row a checkpoint vouches for is missing or holds another hash. */
  | 'checkpoint-mismatch'
  /** The database no longer says where the keyed chain starts where the checkpoints say it does. */
  | 'chain-start-moved';

export type ChainVerification =
  | { ok: true; events: number; checkpoint?: { seq: string; at: string } | undefined; warnings?: string[] | undefined }
  | { ok: false; events: number; firstBrokenSeq: string; problem: ChainProblem; message: string };

export interface VerifyOptions {
  batchSize?: number;
  /** Checkpoint or log files (JSON lines) to hold the chain to; default the configured checkpoint file. */
  checkpointFiles?: readonly string[];
  settings?: AuditTrailSettings;
}

/**
 * Walks the chain in order, recomputing each hash (keyed from the chain's keyed start), and holds it to the
 * latest valid checkpoint; names the first row that does not fit.
 */
export async function verifyAuditChain(db: DbOrTx, options: VerifyOptions = {}): Promise<ChainVerification> {
  const settings = options.settings ?? auditTrailSettings();
  const { keys } = settings;
  const batchSize = options.batchSize ?? 5_000;
  let events = 0;
  const broken = (seq: string, problem: ChainProblem, message: string): ChainVerification => ({ ok: false, events, firstBrokenSeq: seq, problem, message });
  const chain = await readChainInfo(db);
  if (!chain) return broken('1', 'chain-start-moved', 'audit_chain, which says where the keyed chain starts, has no row');
  const keyedFrom = BigInt(chain.keyedFromSeq);
  const found = await findLatestCheckpoint(db, chain, keys, options.checkpointFiles ?? [settings.checkpointFile]);
  const anchor = found.latest;
  const wrongKeyHint = found.otherKeyIds.length
    ? ` (checkpoints signed with key ${found.otherKeyIds.join(', ')} were found, ours is ${keys.keyId}: is ${keys.source} the key this chain was written with?)`
    : '';
  if (!anchor && found.otherChain) {
    return broken(
      found.otherChain.keyedFromSeq,
      'chain-start-moved',
      `the checkpoint of ${found.otherChain.at} names chain ${found.otherChain.chainId} of database ${chain.database}, which now says ${chain.chainId}: audit_chain was replaced ` +
        '(if the database was recreated on purpose, verify against a fresh checkpoint file)',
    );
  }

  if (anchor && anchor.keyedFromSeq !== chain.keyedFromSeq) {
    const seq = BigInt(anchor.keyedFromSeq) < keyedFrom ? anchor.keyedFromSeq : chain.keyedFromSeq;
    return broken(seq, 'chain-start-moved', `the keyed chain starts at seq ${chain.keyedFromSeq} in the database but at seq ${anchor.keyedFromSeq} in the checkpoint of ${anchor.at}`);
  }
  let prevHash = GENESIS_HASH;
  let lastSeq = '0';
  let anchored = false;
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where(sql<boolean>`seq > ${lastSeq}::bigint`)
      .orderBy('seq')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      events += 1;
      if (anchor && !anchored && BigInt(row.seq) > BigInt(anchor.seq)) {
        return broken(anchor.seq, 'checkpoint-mismatch', `seq ${anchor.seq}, vouched for by the checkpoint of ${anchor.at}, is missing`);
      }
      if (row.prev_hash !== prevHash) {
        return broken(row.seq, 'prev-hash-mismatch', `seq ${row.seq} does not link to the row before it: a row was removed or inserted`);
      }
      const { seq: _seq, prev_hash: _prev, hash, recorded_at, ...rest } = row;
      const fields: ChainedFields = {
        ...rest,
        recorded_at: new Date(recorded_at).toISOString(),
        details: row.details as Record<string, unknown>,
      };
      const expected = BigInt(row.seq) >= keyedFrom ? keyedChainHash(keys.chainKey, prevHash, fields) : chainHash(prevHash, fields);
      if (expected !== hash) {
        return broken(row.seq, 'hash-mismatch', `seq ${row.seq} was altered, or re-chained without the audit key${wrongKeyHint}`);
      }
      if (anchor && row.seq === anchor.seq) {
        if (hash !== anchor.hash) {
          return broken(row.seq, 'checkpoint-mismatch', `seq ${row.seq} holds another hash than the checkpoint of ${anchor.at} vouches for`);
        }
        anchored = true;
      }
      prevHash = hash;
      lastSeq = row.seq;
    }
  }
  if (anchor && !anchored) {
    const firstMissing = (BigInt(lastSeq) + 1n).toString();
    return broken(
      firstMissing,
      'truncated',
      `the chain ends at seq ${lastSeq} but the checkpoint of ${anchor.at} vouches for seq ${anchor.seq}: the newest rows, from seq ${firstMissing}, were removed`,
    );
  }
  // No checkpoint at all shows as `checkpoint` absent: the caller says that a cut-off end would go unnoticed.
  const warnings = found.unverified ? [`${found.unverified} checkpoint(s) of this chain failed their signature check${wrongKeyHint}`] : [];
  return {
    ok: true,
    events,
    ...(anchor ? { checkpoint: { seq: anchor.seq, at: anchor.at } } : {}),
    ...(warnings.length ? { warnings } : {}),
  };
}

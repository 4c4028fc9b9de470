import { randomUUID } from 'node:crypto';
import { sql, type RawBuilder, type Selectable } from 'kysely';
import type { AuditEventsTable } from '../db/schema.js';
import { PREPARED_STATEMENT, type Db, type DbOrTx } from '../db/database.js';
import { formatOrganization, type Actor } from '../identity/actor.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { chainHash, chainLink, eventMac, GENESIS_HASH, keyedChainHash, type ChainedFields } from './chain.js';
import { findLatestCheckpoint, readChainInfo } from './checkpoints.js';
import { sealAuditEvents } from './sealer.js';
import { auditTrailSettings, type AuditTrailSettings } from './settings.js';

/**
 * The tamper-evident audit trail (docs/audit.md). Each event carries its own keyed MAC and is inserted with the
 * effect it records, in the same transaction; the sealer (src/audit/sealer.ts) then chains committed events, one
 * keyed link each, so altering, removing or inserting a row breaks the chain from there on. The key is not in
 * the database, so a rewritten stretch cannot be re-chained; the tables' triggers refuse UPDATE, DELETE and
 * TRUNCATE besides, the service's runtime role may not change, remove or un-trigger rows at all, and signed
 * checkpoints of the head, kept outside the database, reveal a cut-off end. Events hold references and codes,
 * never demographics.
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

/** Appends one event. Pass the transaction whose effect the event records, so both commit or neither. */
export async function appendAuditEvent(db: DbOrTx, event: AuditEvent): Promise<void> {
  await appendAuditEvents(db, [event]);
}

/**
 * Appends events, each with its own keyed MAC, and takes no lock: the sealer chains them once they are committed
 * (src/audit/sealer.ts). A batch chunk records each of its rows' decisions in the transaction that writes them.
 */
export async function appendAuditEvents(db: DbOrTx, events: readonly AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (events.length > 1_000 && !db.isTransaction) {
    await (db as Db).transaction().execute((trx) => appendAuditEvents(trx, events));
    return;
  }
  const rows = events.map(eventRow);
  // Inserted in order, so `seq` follows the events' order, and the sealer chains them in it. A single event (every
  // request) is a prepared statement; a batch's many-row insert varies in length, so it is not.
  if (rows.length === 1) {
    await db.insertInto('audit_events').values(rows[0]!).modifyEnd(sql.raw(PREPARED_STATEMENT)).execute();
    return;
  }
  for (let i = 0; i < rows.length; i += 1_000) await db.insertInto('audit_events').values(rows.slice(i, i + 1_000)).execute();
}

/** The row an event is stored as: its fields, the details as JSON, and its keyed MAC. */
function eventRow(event: AuditEvent) {
  const { chainKey } = auditTrailSettings().keys;
  const fields = chainedFields(event);
  return { ...fields, details: JSON.stringify(fields.details), prev_hash: null, hash: eventMac(chainKey, canonicalJson(fields)) };
}

/** The columns of an event row with their types, for an insert whose values are not a VALUES list. */
const EVENT_COLUMNS = [
  ['event_id', 'uuid'],
  ['recorded_at', 'timestamptz'],
  ['request_id', 'text'],
  ['source_ip', 'text'],
  ['actor_class', 'text'],
  ['client_id', 'text'],
  ['organization', 'text'],
  ['token_jti', 'text'],
  ['purpose_of_use', 'text'],
  ['operation', 'text'],
  ['outcome', 'text'],
  ['http_status', 'int4'],
  ['reason_code', 'text'],
  ['consent_decision', 'text'],
  ['member_ref', 'uuid'],
  ['details', 'jsonb'],
  ['hash', 'text'],
] as const;

/**
 * One event as the final part of another statement that writes the effect it records: `INSERT … SELECT … FROM
 * source WHERE condition`, where `source` names one of the statement's CTEs. The event is written once per row of
 * `source` for which `condition` holds, in the same statement as the effect, so both are written or neither.
 */
export function auditEventInsertFrom(event: AuditEvent, source: string, condition: RawBuilder<boolean>): RawBuilder<unknown> {
  const row = eventRow(event);
  const values = EVENT_COLUMNS.map(([column, type]) => sql`${row[column]}::${sql.raw(type)}`);
  return sql`INSERT INTO audit_events (${sql.join(EVENT_COLUMNS.map(([column]) => sql.ref(column)))})
    SELECT ${sql.join(values)} FROM ${sql.table(source)} WHERE ${condition}`;
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

/** An event row's covered fields, as read back from the table. */
function storedFields(row: Selectable<AuditEventsTable>): ChainedFields {
  const { seq: _seq, prev_hash: _prev, hash: _hash, recorded_at, ...rest } = row;
  return { ...rest, recorded_at: new Date(recorded_at).toISOString(), details: row.details as Record<string, unknown> };
}

export type ChainProblem =
  /** The row's hash is not the keyed hash of its content (changed, or re-chained without the key), or a link is not the keyed link of its event. */
  | 'hash-mismatch'
  /** The row or link does not follow the one before it: one was removed or inserted. */
  | 'prev-hash-mismatch'
  /** A link names an event that is gone. */
  | 'event-missing'
  /** An event is neither chained nor waiting to be: its place in the sealer's queue was removed. */
  | 'unlinked'
  /** Two events share an event id or a MAC: a copy of a genuine event was inserted (its MAC is valid, its place is not). */
  | 'duplicate-event'
  /** The chain ends before the latest checkpoint's row: the newest rows were cut off. */
  | 'truncated'
  /** The row a checkpoint vouches for is missing or holds another hash. */
  | 'checkpoint-mismatch'
  /** The database no longer says where the keyed chain starts where the checkpoints say it does. */
  | 'chain-start-moved';

export type ChainVerification =
  | {
      ok: true;
      events: number;
      checkpoint?: { seq: string; at: string } | undefined;
      /** Events committed while verifying, after its sealing round: their MACs were checked, their links are still to come. */
      pending?: number | undefined;
      warnings?: string[] | undefined;
    }
  | { ok: false; events: number; firstBrokenSeq: string; problem: ChainProblem; message: string };

export interface VerifyOptions {
  batchSize?: number;
  /** Checkpoint or log files (JSON lines) to hold the chain to; default the configured checkpoint file. */
  checkpointFiles?: readonly string[];
  settings?: AuditTrailSettings;
  /** Chain every committed event first (default true; needs a connection that may write the links). */
  seal?: boolean;
}

/**
 * Chains what is committed (unless `seal: false`), then walks the chain in order — the inline rows by seq, then
 * the links by position, each event's MAC and each link recomputed under the key — and holds it to the latest
 * valid checkpoint; names the first row or link that does not fit. Positions continue the inline rows'
 * numbering, so a checkpoint's `seq` names either. `firstBrokenSeq` is an event's seq when the event is at fault,
 * and a link's position when the link is.
 */
export async function verifyAuditChain(db: DbOrTx, options: VerifyOptions = {}): Promise<ChainVerification> {
  const settings = options.settings ?? auditTrailSettings();
  const { keys } = settings;
  const batchSize = options.batchSize ?? 5_000;
  if (options.seal !== false && !db.isTransaction) await sealAuditEvents(db as Db, { wait: true, settings });
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
  /** A sealed-era event (chained or pending) must carry its own MAC and no inline link. */
  const eventAltered = (event: Selectable<AuditEventsTable>): ChainVerification | undefined =>
    event.prev_hash !== null || eventMac(keys.chainKey, canonicalJson(storedFields(event))) !== event.hash
      ? broken(event.seq, 'hash-mismatch', `seq ${event.seq} was altered, or written without the audit key${wrongKeyHint}`)
      : undefined;
  const anchorPosition = anchor ? BigInt(anchor.seq) : undefined;
  let anchored = false;
  /** The checkpoint's row or link, if `position` has passed it without meeting it. */
  const passedAnchor = (position: bigint) => anchor && !anchored && position > anchorPosition!;
  const meetsAnchor = (position: bigint, hash: string): ChainVerification | undefined => {
    if (!anchor || position !== anchorPosition) return undefined;
    if (hash !== anchor.hash) return broken(anchor.seq, 'checkpoint-mismatch', `${anchor.seq} holds another hash than the checkpoint of ${anchor.at} vouches for`);
    anchored = true;
    return undefined;
  };

  // 1. The inline chain: rows written before migration 0017, each linked to the one before it.
  let prevHash = GENESIS_HASH;
  let position = 0n;
  for (let lastSeq = '0'; ; ) {
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('prev_hash', 'is not', null)
      .where(sql<boolean>`seq > ${lastSeq}::bigint`)
      .orderBy('seq')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      events += 1;
      const seq = BigInt(row.seq);
      if (passedAnchor(seq)) return broken(anchor!.seq, 'checkpoint-mismatch', `seq ${anchor!.seq}, vouched for by the checkpoint of ${anchor!.at}, is missing`);
      if (row.prev_hash !== prevHash) {
        return broken(row.seq, 'prev-hash-mismatch', `seq ${row.seq} does not link to the row before it: a row was removed or inserted`);
      }
      const fields = storedFields(row);
      const expected = seq >= keyedFrom ? keyedChainHash(keys.chainKey, prevHash, fields) : chainHash(prevHash, fields);
      if (expected !== row.hash) {
        return broken(row.seq, 'hash-mismatch', `seq ${row.seq} was altered, or re-chained without the audit key${wrongKeyHint}`);
      }
      const atAnchor = meetsAnchor(seq, row.hash);
      if (atAnchor) return atAnchor;
      prevHash = row.hash;
      position = seq;
      lastSeq = row.seq;
    }
  }

  // 2. The sealed chain: one link per event, continuing the inline chain's numbering.
  for (;;) {
    const rows = await db
      .selectFrom('audit_chain_links as l')
      .leftJoin('audit_events as e', 'e.seq', 'l.event_seq')
      .selectAll('e')
      .select(['l.position', 'l.event_seq', 'l.prev_link', 'l.link'])
      .where('l.position', '>', position.toString())
      .orderBy('l.position')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      const at = BigInt(row.position);
      if (passedAnchor(at)) return broken(anchor!.seq, 'checkpoint-mismatch', `link ${anchor!.seq}, vouched for by the checkpoint of ${anchor!.at}, is missing`);
      if (at !== position + 1n || row.prev_link !== prevHash) {
        return broken(row.position, 'prev-hash-mismatch', `link ${row.position} does not follow the link before it: a link was removed or inserted`);
      }
      if (row.seq === null) return broken(row.position, 'event-missing', `link ${row.position} chains event seq ${row.event_seq}, which is gone`);
      events += 1;
      const { position: _position, event_seq: _eventSeq, prev_link: _prevLink, link: _link, ...columns } = row;
      const event = columns as Selectable<AuditEventsTable>;
      const altered = eventAltered(event);
      if (altered) return altered;
      if (chainLink(keys.chainKey, prevHash, row.event_seq, event.hash) !== row.link) {
        return broken(row.position, 'hash-mismatch', `link ${row.position} was altered, or re-chained without the audit key${wrongKeyHint}`);
      }
      const atAnchor = meetsAnchor(at, row.link);
      if (atAnchor) return atAnchor;
      prevHash = row.link;
      position = at;
    }
  }
  if (anchor && !anchored) {
    const firstMissing = (position + 1n).toString();
    return broken(
      firstMissing,
      'truncated',
      `the chain ends at ${position} but the checkpoint of ${anchor.at} vouches for ${anchor.seq}: the newest rows, from ${firstMissing}, were removed`,
    );
  }

  // 3. Events not chained yet: committed since the sealing round above. Their MACs hold them until they are.
  const pending = await db
    .selectFrom('audit_pending as p')
    .innerJoin('audit_events as e', 'e.seq', 'p.event_seq')
    .selectAll('e')
    .where((eb) => eb.not(eb.exists(eb.selectFrom('audit_chain_links as l').select('l.position').whereRef('l.event_seq', '=', 'p.event_seq'))))
    .orderBy('e.seq')
    .execute();
  for (const event of pending) {
    events += 1;
    const altered = eventAltered(event);
    if (altered) return altered;
  }
  // 4. An event that is neither: its queue row was removed, so it would never be chained.
  const unlinked = await sql<{ seq: string }>`
    SELECT e.seq FROM audit_events e
    WHERE e.prev_hash IS NULL
      AND NOT EXISTS (SELECT 1 FROM audit_chain_links l WHERE l.event_seq = e.seq)
      AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_seq = e.seq)
    ORDER BY e.seq LIMIT 1`.execute(db);
  if (unlinked.rows[0]) {
    const { seq } = unlinked.rows[0];
    return broken(seq, 'unlinked', `seq ${seq} is neither chained nor waiting to be: its place in audit_pending was removed`);
  }

  // 5. A copy of a genuine event carries a valid MAC: the same event id or MAC twice is a copy (the table's unique
  // constraints refuse one, unless they were dropped behind the service's back).
  const duplicate = await sql<{ seq: string }>`
    SELECT seq FROM (
      SELECT seq, count(*) OVER (PARTITION BY event_id) AS same_id, count(*) OVER (PARTITION BY hash) AS same_mac FROM audit_events
    ) d
    WHERE same_id > 1 OR same_mac > 1 ORDER BY seq LIMIT 1`.execute(db);
  if (duplicate.rows[0]) {
    const { seq } = duplicate.rows[0];
    return broken(seq, 'duplicate-event', `seq ${seq} shares its event id or hash with another event: a copy of an event was inserted`);
  }

  // No checkpoint at all shows as `checkpoint` absent: the caller says that a cut-off end would go unnoticed.
  const warnings = found.unverified ? [`${found.unverified} checkpoint(s) of this chain failed their signature check${wrongKeyHint}`] : [];
  return {
    ok: true,
    events,
    ...(anchor ? { checkpoint: { seq: anchor.seq, at: anchor.at } } : {}),
    ...(pending.length ? { pending: pending.length } : {}),
    ...(warnings.length ? { warnings } : {}),
  };
}

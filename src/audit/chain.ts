import { createHash, createHmac } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { AuditEventsTable } from '../db/schema.js';
import type { DbOrTx } from '../db/database.js';
import { canonicalJson } from '../shared/canonical-json.js';

/**
 * The audit chain's hashes and head (docs/audit.md). Three generations of rows, one chain:
 *
 * - rows before migration 0012: inline, `hash` = SHA-256(prev_hash, row);
 * - rows from 0012 to 0017: inline, `hash` = HMAC(prev_hash, row) under the audit key;
 * - rows since 0017: `hash` = the row's own MAC (HMAC under the audit key, no predecessor), `prev_hash` NULL,
 *   and the chain runs through `audit_chain_links`: link = HMAC(previous link, event seq, event MAC).
 *
 * The key is never in the database, so neither a row nor a link can be rewritten to fit.
 */

export const GENESIS_HASH = '0'.repeat(64);

/**
 * The sealer's lock: one process at a time extends the chain (src/audit/sealer.ts). The same key the inline
 * chain's appenders held, so no two kinds of writer can ever extend the chain at once.
 */
export const CHAIN_LOCK_KEY = 0x6d6d_a0d1;

/** The columns an event's hash covers: everything but the sequence number and the hashes themselves. */
export type ChainedFields = Omit<Selectable<AuditEventsTable>, 'seq' | 'prev_hash' | 'hash' | 'recorded_at'> & { recorded_at: string };

/** The link of rows written before the keyed chain began (before migration 0012): plain SHA-256. */
export function chainHash(prevHash: string, fields: ChainedFields): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(fields)).digest('hex');
}

/** The inline keyed link (migrations 0012 to 0017): HMAC-SHA256 under the audit key, over the same text. */
export function keyedChainHash(chainKey: Buffer, prevHash: string, fields: ChainedFields): string {
  return createHmac('sha256', chainKey).update(prevHash).update('\n').update(canonicalJson(fields)).digest('hex');
}

/**
 * An event's own MAC (since migration 0017), over its canonical text. The prefixes keep an event MAC, a link and
 * an inline link from ever being the same HMAC input.
 */
export function eventMac(chainKey: Buffer, canonicalText: string): string {
  return createHmac('sha256', chainKey).update('member-match.audit-event\n').update(canonicalText).digest('hex');
}

/** A link of the sealed chain: the previous link, the event's seq and its MAC. */
export function chainLink(chainKey: Buffer, prevLink: string, eventSeq: string, mac: string): string {
  return createHmac('sha256', chainKey).update('member-match.audit-link\n').update(`${prevLink}\n${eventSeq}\n${mac}`).digest('hex');
}

/** The chain's head: the newest link, else the newest inline row, else the genesis at position 0. */
export interface ChainHead {
  position: bigint;
  hash: string;
}

export async function readChainHead(db: DbOrTx): Promise<ChainHead> {
  const link = await db.selectFrom('audit_chain_links').select(['position', 'link']).orderBy('position', 'desc').limit(1).executeTakeFirst();
  if (link) return { position: BigInt(link.position), hash: link.link };
  // Before the first link only: the newest inline row (the links then continue its numbering).
  const inline = await db
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .where('prev_hash', 'is not', null)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return inline ? { position: BigInt(inline.seq), hash: inline.hash } : { position: 0n, hash: GENESIS_HASH };
}

import { sign, verify as verifySignature } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'kysely';
import { tryTransactionLock, type Db, type DbOrTx } from '../db/database.js';
import type { Logger } from '../logger.js';
import { checkpointFailures, checkpointLastSuccess } from '../metrics.js';
import { runPeriodically } from '../periodic.js';
import { canonicalJson } from '../shared/canonical-json.js';
import type { AuditKeys } from './audit-key.js';
import { readChainHead } from './chain.js';
import { sealAuditEvents } from './sealer.js';
import { auditTrailSettings, type AuditTrailSettings } from './settings.js';

/**
 * Signed checkpoints of the audit chain's head (docs/audit.md). Every so often one process signs the newest
 * event's sequence number and hash with the checkpoint key (Ed25519, derived from the audit key) and writes the
 * checkpoint where the database cannot reach: a line in the log stream and a line appended to the checkpoint
 * file. `audit verify` then holds the chain to the latest checkpoint, so cutting the newest rows, or rewriting
 * the row a checkpoint vouches for, is found. Only events after the latest checkpoint are unanchored.
 */

export const CHECKPOINT_TYPE = 'member-match.audit-checkpoint';

export interface AuditCheckpoint {
  type: typeof CHECKPOINT_TYPE;
  /** The database's name: a checkpoint file may serve several databases. */
  database: string;
  chainId: string;
  keyedFromSeq: string;
  seq: string;
  hash: string;
  at: string;
  keyId: string;
  /** Ed25519 over the canonical JSON of every other field, base64url. */
  signature: string;
}

/** Several processes may run a checkpointer: one at a time takes a checkpoint (per database). */
const CHECKPOINT_LOCK_KEY = 0x6d6d_a0d2;

export interface ChainInfo {
  database: string;
  chainId: string;
  keyedFromSeq: string;
}

/** The chain's identity and keyed start (migration 0012); undefined if its row is gone. */
export async function readChainInfo(db: DbOrTx): Promise<ChainInfo | undefined> {
  const row = await db
    .selectFrom('audit_chain')
    .select(['chain_id', 'keyed_from_seq', sql<string>`current_database()`.as('database')])
    .executeTakeFirst();
  return row && { database: row.database, chainId: row.chain_id, keyedFromSeq: row.keyed_from_seq };
}

function signedPart(checkpoint: Omit<AuditCheckpoint, 'signature'>): Buffer {
  const { type, database, chainId, keyedFromSeq, seq, hash, at, keyId } = checkpoint;
  return Buffer.from(canonicalJson({ type, database, chainId, keyedFromSeq, seq, hash, at, keyId }));
}

export function signCheckpoint(keys: AuditKeys, fields: Omit<AuditCheckpoint, 'type' | 'keyId' | 'signature'>): AuditCheckpoint {
  const unsigned = { type: CHECKPOINT_TYPE, ...fields, keyId: keys.keyId } as const;
  return { ...unsigned, signature: sign(null, signedPart(unsigned), keys.checkpointPrivateKey).toString('base64url') };
}

export function checkpointSignatureValid(keys: AuditKeys, checkpoint: AuditCheckpoint): boolean {
  try {
    return verifySignature(null, signedPart(checkpoint), keys.checkpointPublicKey, Buffer.from(checkpoint.signature, 'base64url'));
  } catch {
    return false;
  }
}

/**
 * Takes a checkpoint of the head unless there is nothing new to vouch for, another process holds the
 * checkpoint lock, or (unless `force`) another process took one less than an interval ago. Returns it, or
 * undefined when none was taken.
 */
export async function takeCheckpoint(
  db: Db,
  logger: Logger,
  options: { force?: boolean; settings?: AuditTrailSettings } = {},
): Promise<AuditCheckpoint | undefined> {
  const settings = options.settings ?? auditTrailSettings();
  // A checkpoint vouches for everything committed before it: chain it first (unless another process is).
  await sealAuditEvents(db, { logger, settings });
  return db.transaction().execute(async (trx) => {
    if (!(await tryTransactionLock(trx, CHECKPOINT_LOCK_KEY))) return undefined;
    // The newest link (or, before the first, the newest inline row): its position is the checkpoint's `seq`.
    const chainHead = await readChainHead(trx);
    if (chainHead.position === 0n) return undefined;
    const head = { seq: chainHead.position.toString(), hash: chainHead.hash };
    const last = await trx.selectFrom('audit_checkpoints').select(['seq', 'signed_at']).orderBy('signed_at', 'desc').limit(1).executeTakeFirst();
    if (last?.seq === head.seq) return undefined;
    const now = new Date();
    if (last && !options.force && now.getTime() - new Date(last.signed_at).getTime() < settings.checkpointIntervalSeconds * 1000 * 0.9) {
      return undefined;
    }
    const chain = await readChainInfo(trx);
    if (!chain) throw new Error('audit_chain has no row: the keyed chain is not set up (migration 0012)');
    const checkpoint = signCheckpoint(settings.keys, { ...chain, seq: head.seq, hash: head.hash, at: now.toISOString() });
    // Outside the database first: a checkpoint recorded only in the table would anchor nothing.
    await mkdir(path.dirname(settings.checkpointFile), { recursive: true });
    await appendFile(settings.checkpointFile, `${JSON.stringify(checkpoint)}\n`);
    logger.info({ auditCheckpoint: checkpoint }, 'audit checkpoint');
    await trx
      .insertInto('audit_checkpoints')
      .values({ seq: checkpoint.seq, hash: checkpoint.hash, signed_at: checkpoint.at, key_id: checkpoint.keyId, signature: checkpoint.signature })
      .execute();
    return checkpoint;
  });
}

/** Checkpoints every AUDIT_CHECKPOINT_INTERVAL_SECONDS, and a last one when stopped. */
export function startAuditCheckpointer(db: Db, logger: Logger, settings: AuditTrailSettings = auditTrailSettings()): { stop(): Promise<void> } {
  const loop = runPeriodically(
    async () => {
      // Counted on every failing tick (runPeriodically logs only the first): the alert rules watch the rate.
      await takeCheckpoint(db, logger, { settings }).then(
        () => checkpointLastSuccess.setToCurrentTime(),
        (error: unknown) => {
          checkpointFailures.inc();
          throw error;
        },
      );
    },
    {
      intervalMs: settings.checkpointIntervalSeconds * 1000,
      logger,
      failing: 'audit checkpoint failing',
      recovered: 'audit checkpoint recovered',
    },
  );
  return {
    async stop() {
      await loop.stop();
      await takeCheckpoint(db, logger, { settings, force: true }).catch((error: Error) => {
        checkpointFailures.inc();
        logger.warn({ errName: error.name }, 'final audit checkpoint failed');
      });
    },
  };
}

function asCheckpoint(value: unknown): AuditCheckpoint | undefined {
  // A checkpoint file line is the checkpoint; a log line carries it under `auditCheckpoint`.
  const candidate = (value as { auditCheckpoint?: unknown })?.auditCheckpoint ?? value;
  const c = candidate as Partial<AuditCheckpoint> | null;
  if (!c || c.type !== CHECKPOINT_TYPE) return undefined;
  const fields = [c.database, c.chainId, c.keyedFromSeq, c.seq, c.hash, c.at, c.keyId, c.signature];
  return fields.every((f) => typeof f === 'string') ? (c as AuditCheckpoint) : undefined;
}

export interface CheckpointSearch {
  /** The latest checkpoint of this chain with a valid signature, by sequence number. */
  latest: AuditCheckpoint | undefined;
  /** Checkpoints of this chain whose signature does not verify with our key, and the key ids they name. */
  unverified: number;
  otherKeyIds: string[];
  /** A valid checkpoint of this database naming another chain id: the chain's row was replaced. */
  otherChain: AuditCheckpoint | undefined;
}

/**
 * Finds the latest valid checkpoint of a chain in checkpoint files or log files (JSON lines; other lines are
 * skipped) and in the database's copy. A missing file counts as empty.
 */
export async function findLatestCheckpoint(db: DbOrTx, chain: ChainInfo, keys: AuditKeys, files: readonly string[]): Promise<CheckpointSearch> {
  const search: CheckpointSearch = { latest: undefined, unverified: 0, otherKeyIds: [], otherChain: undefined };
  const consider = (checkpoint: AuditCheckpoint) => {
    if (checkpoint.chainId !== chain.chainId) {
      if (checkpoint.database === chain.database && checkpointSignatureValid(keys, checkpoint)) search.otherChain = checkpoint;
      return;
    }
    if (!checkpointSignatureValid(keys, checkpoint)) {
      search.unverified += 1;
      if (checkpoint.keyId !== keys.keyId && !search.otherKeyIds.includes(checkpoint.keyId)) search.otherKeyIds.push(checkpoint.keyId);
      return;
    }
    if (!search.latest || BigInt(checkpoint.seq) > BigInt(search.latest.seq)) search.latest = checkpoint;
  };
  for (const file of files) {
    let lines;
    try {
      lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
      for await (const line of lines) {
        if (!line.startsWith('{')) continue;
        try {
          const checkpoint = asCheckpoint(JSON.parse(line));
          if (checkpoint) consider(checkpoint);
        } catch {
          // not JSON: another kind of log line
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  const stored = await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
  if (stored) {
    consider({
      type: CHECKPOINT_TYPE,
      ...chain,
      seq: stored.seq,
      hash: stored.hash,
      at: new Date(stored.signed_at).toISOString(),
      keyId: stored.key_id,
      signature: stored.signature,
    });
  }
  return search;
}

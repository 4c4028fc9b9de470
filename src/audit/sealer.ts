import { sql } from 'kysely';
import { PREPARED_STATEMENT, tryTransactionLock, type Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { auditEventsSealed, auditSealFailures } from '../metrics.js';
import { runPeriodically } from '../periodic.js';
import { CHAIN_LOCK_KEY, chainLink, readChainHead } from './chain.js';
import { auditTrailSettings, type AuditTrailSettings } from './settings.js';

/**
 * The sealer (docs/audit.md "Sealing"): chains the events that requests have committed. A request inserts its
 * event with its effect and its own keyed MAC, and takes no lock (migration 0017); the sealer, one process at a
 * time under the chain's advisory lock held only for its own short transaction, takes the committed events
 * waiting in `audit_pending` in seq order and appends one keyed link each. A few hundred events cost one lock,
 * three statements and a commit, instead of every decision in every process waiting for the one before it.
 */

/** How often each process's sealer looks for events to chain; an event is chained about this long after its commit. */
export const SEAL_INTERVAL_MS = 200;
const SEAL_BATCH = 2_000;

/**
 * Chains every committed pending event, in batches, and returns how many queued events it took (the skipped ones
 * included; the metric counts only those chained). With `wait` it waits for the chain's
 * lock (verification and checkpoints must see everything committed); without, it returns 0 at once when another
 * process is sealing.
 */
export async function sealAuditEvents(
  db: Db,
  options: { wait?: boolean; logger?: Logger | undefined; settings?: AuditTrailSettings } = {},
): Promise<number> {
  const { chainKey } = (options.settings ?? auditTrailSettings()).keys;
  let sealed = 0;
  let chained = 0;
  for (;;) {
    const round = await db.transaction().execute(async (trx) => {
      if (options.wait) {
        await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`.execute(trx);
      } else if (!(await tryTransactionLock(trx, CHAIN_LOCK_KEY))) {
        return { taken: 0, chained: 0 };
      }
      const { rows: events } = await takePendingEvents(SEAL_BATCH).execute(trx);
      // Only an event that exists, is not an inline row and is not linked yet is chained: a queue row for anything
      // else (an event removed behind the triggers, or a row that should never have been queued) is dropped and
      // reported, so it can neither stop sealing nor be linked twice.
      const present = events.filter((event): event is { seq: string; hash: string; linked: null } => event.hash !== null && event.linked === null);
      if (present.length < events.length) {
        options.logger?.error({ skipped: events.length - present.length }, 'audit sealing skipped queued events that are missing, inline or already chained');
      }
      if (present.length === 0) return { taken: events.length, chained: 0 };
      let { position, hash: prevLink } = await readChainHead(trx);
      const links = present.map((event) => {
        position += 1n;
        const link = chainLink(chainKey, prevLink, event.seq, event.hash);
        const row = { position: position.toString(), event_seq: event.seq, prev_link: prevLink, link };
        prevLink = link;
        return row;
      });
      for (let i = 0; i < links.length; i += 1_000) await trx.insertInto('audit_chain_links').values(links.slice(i, i + 1_000)).execute();
      return { taken: events.length, chained: links.length };
    });
    sealed += round.taken;
    chained += round.chained;
    if (round.taken < SEAL_BATCH) break;
  }
  if (chained > 0) auditEventsSealed.inc(chained);
  return sealed;
}

/**
 * Takes up to `limit` queued events in seq order, with each one's MAC (NULL if the event is missing or an inline
 * row) and whether it is linked already. Only committed events are visible here; one still in flight is taken by
 * a later round, and chained after events with a higher seq: the chain's order is the order of sealing.
 *
 * Both checks are correlated scalar subqueries, one index probe per taken event, never `EXISTS`: Postgres may
 * plan an `EXISTS` as a hashed subplan, which reads every link of the whole chain to build its hash table, or as a
 * scan of the links per event. It did the first on the bench's index: 40 ms a round at 45,000 links, five rounds
 * a second, growing with the chain for ever (docs/benchmarks.md, sixth session); the test's small chain got the
 * second. As a join the planner chose to scan the whole events table. Prepared: planning it cost more than running
 * it. Exported for its test, which checks the plan reads no more links than it takes.
 */
export function takePendingEvents(limit: number) {
  return sql<{ seq: string; hash: string | null; linked: boolean | null }>`${sql.raw(PREPARED_STATEMENT)}
    WITH taken AS (
      DELETE FROM audit_pending WHERE event_seq IN (SELECT event_seq FROM audit_pending ORDER BY event_seq LIMIT ${limit})
      RETURNING event_seq
    )
    SELECT t.event_seq AS seq,
      (SELECT hash FROM audit_events WHERE seq = t.event_seq AND prev_hash IS NULL) AS hash,
      (SELECT true FROM audit_chain_links WHERE event_seq = t.event_seq) AS linked
    FROM taken t
    ORDER BY t.event_seq`;
}

/**
 * The periodic sealer's rounds. After a round that took nothing, the next first asks whether anything waits, in
 * one statement outside any transaction: an idle process would otherwise spend four statements (BEGIN, the lock,
 * the take, COMMIT) five times a second on nothing, in every API and worker process. Under load every round takes
 * events, so the question is not asked. A round that found the lock held by another process counts as empty: the
 * next one asks, and seals if anything still waits.
 */
export function sealingRounds(db: Db, logger?: Logger): () => Promise<number> {
  let idle = false;
  return async () => {
    if (idle && !(await anyPendingEvents(db))) return 0;
    const taken = await sealAuditEvents(db, { logger });
    idle = taken === 0;
    return taken;
  };
}

async function anyPendingEvents(db: Db): Promise<boolean> {
  const { rows } = await sql<{ pending: boolean }>`${sql.raw(PREPARED_STATEMENT)} SELECT EXISTS (SELECT 1 FROM audit_pending) AS pending`.execute(db);
  return rows[0]?.pending === true;
}

/** Seals every {@link SEAL_INTERVAL_MS}, and everything committed when stopped. */
export function startAuditSealer(db: Db, logger: Logger, intervalMs = SEAL_INTERVAL_MS): { stop(): Promise<void> } {
  const round = sealingRounds(db, logger);
  const loop = runPeriodically(
    async () => {
      await round().catch((error: unknown) => {
        auditSealFailures.inc();
        throw error;
      });
    },
    { intervalMs, logger, failing: 'audit sealing failing', recovered: 'audit sealing recovered' },
  );
  return {
    async stop() {
      await loop.stop();
      await sealAuditEvents(db, { wait: true, logger }).catch((error: Error) => {
        auditSealFailures.inc();
        logger.warn({ errName: error.name }, 'final audit sealing failed');
      });
    },
  };
}

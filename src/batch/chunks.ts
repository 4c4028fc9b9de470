import { sql } from 'kysely';
import type { Config } from '../config.js';
import type { Db, Tx } from '../db/database.js';
import { appendAuditEvents, type AuditEvent } from '../audit/audit-trail.js';
import type { Logger } from '../logger.js';
import type { MatchModel } from '../matching/model.js';
import { findJob, ownerAsActor, type BatchJob, type JobResult, type RowOutcome } from './jobs.js';

/**
 * Processing one chunk of a job: read its rows, decide each (reads only), then write every row's effect, its
 * result and its audit event, mark the chunk done and count it against the job — all in one transaction.
 * A chunk that finds itself done (a retry after a crash that happened after the commit) writes nothing; one
 * killed before the commit left nothing behind and starts again. So every row is decided exactly once.
 */

export interface BatchDeps {
  db: Db;
  config: Config;
  /** Key for the keyed hashes (review request keys, demographics hashes). */
  phiHashKey: string;
  matchModel: () => Promise<MatchModel>;
  logger: Logger;
}

export interface InputRow {
  seq: number;
  line: number;
  input: Record<string, unknown>;
}

/** What a row comes to: its result, the write that gives it effect, and what its audit event says. */
export interface RowPlan extends Omit<JobResult, 'seq' | 'line'> {
  /** The row's effect (a link, a review case), in the chunk's transaction; may fill in `reviewCaseId`. */
  write?: (trx: Tx, result: RowPlan) => Promise<void>;
  /** Audit event fields besides actor and operation; absent for rows that decided nothing (rejected input). */
  audit?: Pick<AuditEvent, 'outcome' | 'reasonCode' | 'consentDecision' | 'memberRef' | 'details'>;
}

/** Decides a chunk's rows, in order, one plan per row. Reads only: nothing is written before the commit. */
export type ChunkPlanner = (deps: BatchDeps, job: BatchJob, rows: InputRow[]) => Promise<RowPlan[]>;

export type ChunkOutcome = 'done' | 'already-done' | 'job-not-running';

const OUTCOME_COLUMN: Record<RowOutcome, 'matched' | 'review' | 'no_match' | 'consent_constrained' | 'rejected'> = {
  matched: 'matched',
  review: 'review',
  'no-match': 'no_match',
  'consent-constrained': 'consent_constrained',
  rejected: 'rejected',
};

class JobStopped extends Error {}

export async function processChunk(deps: BatchDeps, jobId: string, chunk: number, planner: ChunkPlanner): Promise<ChunkOutcome> {
  const { db } = deps;
  const job = await findJob(db, jobId);
  if (!job || (job.state !== 'queued' && job.state !== 'running')) return 'job-not-running';
  if (job.state === 'queued') {
    await db.updateTable('batch_jobs').set({ state: 'running', started_at: new Date() }).where('id', '=', jobId).where('state', '=', 'queued').execute();
  }
  const range = await db.selectFrom('batch_chunks').selectAll().where('job_id', '=', jobId).where('chunk', '=', chunk).executeTakeFirst();
  if (!range) throw new Error('no such chunk');
  if (range.done_at) return 'already-done';
  await db.updateTable('batch_chunks').set({ attempts: sql<number>`attempts + 1` }).where('job_id', '=', jobId).where('chunk', '=', chunk).execute();

  const rows = await db
    .selectFrom('batch_rows')
    .selectAll()
    .where('job_id', '=', jobId)
    .where('seq', '>=', range.first_seq)
    .where('seq', '<=', range.last_seq)
    .orderBy('seq')
    .execute();
  const readable: InputRow[] = [];
  for (const row of rows) if (row.input) readable.push({ seq: row.seq, line: row.line, input: row.input });
  const plans = readable.length > 0 ? await planner(deps, job, readable) : [];
  if (plans.length !== readable.length) throw new Error('the planner returned the wrong number of plans');
  const planBySeq = new Map(readable.map((row, i) => [row.seq, plans[i]!]));

  try {
    await db.transaction().execute(async (trx) => {
      const locked = await sql<{ done_at: Date | null }>`
        SELECT done_at FROM batch_chunks WHERE job_id = ${jobId} AND chunk = ${chunk} FOR UPDATE`.execute(trx);
      if (locked.rows[0]?.done_at) throw new JobStopped('already-done');
      const results: JobResult[] = [];
      const events: AuditEvent[] = [];
      const actor = ownerAsActor(job.owner);
      for (const row of rows) {
        const plan: RowPlan = planBySeq.get(row.seq) ?? { outcome: 'rejected', reason: row.error ?? 'unreadable row' };
        await plan.write?.(trx, plan);
        const { write: _write, audit, ...result } = plan;
        results.push({ seq: row.seq, line: row.line, ...result });
        if (audit) {
          events.push({
            actor,
            operation: job.kind,
            ...audit,
            memberRef: plan.memberUuid ?? audit.memberRef,
            details: { ...audit.details, batchJob: job.id, row: row.seq, ...(plan.reviewCaseId ? { reviewCase: plan.reviewCaseId } : {}) },
          });
        }
      }
      await insertResults(trx, jobId, results);
      await appendAuditEvents(trx, events);
      await trx.updateTable('batch_chunks').set({ done_at: new Date() }).where('job_id', '=', jobId).where('chunk', '=', chunk).execute();
      const counts = Object.fromEntries(Object.values(OUTCOME_COLUMN).map((c) => [c, 0])) as Record<string, number>;
      for (const r of results) counts[OUTCOME_COLUMN[r.outcome]]! += 1;
      // The job row last, and only while the job still runs: a cancellation that landed meanwhile rolls the
      // chunk back rather than writing into a cancelled job.
      const updated = await sql<{ id: string }>`
        UPDATE batch_jobs SET rows_done = rows_done + ${results.length}, chunks_done = chunks_done + 1,
          matched = matched + ${counts.matched}, review = review + ${counts.review}, no_match = no_match + ${counts.no_match},
          consent_constrained = consent_constrained + ${counts.consent_constrained}, rejected = rejected + ${counts.rejected}
        WHERE id = ${jobId} AND state = 'running' RETURNING id`.execute(trx);
      if (updated.rows.length === 0) throw new JobStopped('job-not-running');
    });
  } catch (error) {
    if (error instanceof JobStopped) return error.message as ChunkOutcome;
    throw error;
  }
  return 'done';
}

async function insertResults(trx: Tx, jobId: string, results: JobResult[]): Promise<void> {
  if (results.length === 0) return;
  const col = <K extends keyof JobResult>(k: K) => results.map((r) => r[k] ?? null);
  await sql`INSERT INTO batch_results (job_id, seq, line, outcome, member_uuid, member_id, band, probability, review_case_id, reason)
    SELECT ${jobId}::uuid, * FROM unnest(${col('seq')}::int[], ${col('line')}::int[], ${col('outcome')}::text[], ${col('memberUuid')}::uuid[],
      ${col('memberId')}::text[], ${col('band')}::text[], ${col('probability')}::float8[], ${col('reviewCaseId')}::uuid[], ${col('reason')}::text[])`.execute(trx);
}

/** Runs `work` over `items` with at most `concurrency` in flight; results keep the items' order. */
export async function mapConcurrently<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

import { sql } from 'kysely';
import type { Tx } from '../db/database.js';
import type { Authority } from '../pipeline/authority.js';
import { commitPlans } from '../pipeline/commit.js';
import type { PipelineDeps } from '../pipeline/plan.js';
import type { MatchPlan, PlannedBatch } from '../pipeline/types.js';
import { findJob, ownerAsActor, type BatchJob, type JobResult, type RowOutcome } from './jobs.js';

/**
 * Processing one chunk of a job: read its rows, decide each (reads only), then write every row's effect, its
 * result and its audit event, mark the chunk done and count it against the job — all in one transaction.
 * A chunk that finds itself done (a retry after a crash that happened after the commit) writes nothing; one
 * killed before the commit left nothing behind and starts again. So every row is decided exactly once.
 */

export type BatchDeps = PipelineDeps;

export interface InputRow {
  seq: number;
  line: number;
  input: Record<string, unknown>;
}

/**
 * A chunk's rows, planned: the pipeline's batch (one plan per readable person) and, for each input row in
 * order, the index of its plan or why the row was rejected without being matched.
 */
export interface ChunkPlan {
  authority: Authority;
  batch: PlannedBatch;
  rows: ({ plan: number } | { rejected: string })[];
}

/** Turns a chunk's input rows into pipeline inputs and plans them. Reads only: nothing is written before the commit. */
export type ChunkPlanner = (deps: BatchDeps, job: BatchJob, rows: InputRow[]) => Promise<ChunkPlan>;

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
  const planned = readable.length > 0 ? await planner(deps, job, readable) : undefined;
  if (planned && planned.rows.length !== readable.length) throw new Error('the planner returned the wrong number of rows');
  const rowPlanBySeq = new Map(readable.map((row, i) => [row.seq, planned!.rows[i]!]));

  try {
    await db.transaction().execute(async (trx) => {
      const locked = await sql<{ done_at: Date | null }>`
        SELECT done_at FROM batch_chunks WHERE job_id = ${jobId} AND chunk = ${chunk} FOR UPDATE`.execute(trx);
      if (locked.rows[0]?.done_at) throw new JobStopped('already-done');
      const actor = ownerAsActor(job.owner);
      const seqOfPlan = new Map<number, number>();
      for (const [seq, rowPlan] of rowPlanBySeq) if ('plan' in rowPlan) seqOfPlan.set(rowPlan.plan, seq);
      if (planned) {
        await commitPlans(trx, planned.authority, planned.batch, {
          batchJobId: job.id,
          auditEvent: (plan, index) => ({
            actor,
            operation: job.kind,
            outcome: plan.outcome === 'matched' || plan.outcome === 'review-pending' ? 'success' : 'failure',
            reasonCode: plan.reasonCode,
            consentDecision: plan.consentDecision,
            memberRef: plan.member?.memberUuid,
            details: { ...plan.details, batchJob: job.id, row: seqOfPlan.get(index) },
          }),
        });
      }
      const results: JobResult[] = rows.map((row) => {
        const rowPlan = rowPlanBySeq.get(row.seq);
        if (!rowPlan || 'rejected' in rowPlan) return { seq: row.seq, line: row.line, outcome: 'rejected', reason: rowPlan?.rejected ?? row.error ?? 'unreadable row' };
        return { seq: row.seq, line: row.line, ...jobResultOf(planned!.batch.plans[rowPlan.plan]!) };
      });
      await insertResults(trx, jobId, results);
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

/** A plan as a row's result: what the job's owner reads back. Locked and over-budget rows are not matched. */
function jobResultOf(plan: MatchPlan): Omit<JobResult, 'seq' | 'line'> {
  const scorerReason = plan.decision && plan.decision.outcome !== 'matched' ? plan.decision.reason : undefined;
  const base = { band: plan.band, probability: plan.probability, reviewCaseId: plan.reviewCaseId };
  switch (plan.outcome) {
    case 'matched':
      return { ...base, outcome: 'matched', memberUuid: plan.member!.memberUuid, memberId: plan.member!.memberId };
    case 'review-pending':
      return { ...base, outcome: 'review', reason: scorerReason ?? 'manual-review-pending' };
    case 'no-match':
      return { ...base, outcome: 'no-match', reason: scorerReason ?? plan.reasonCode };
    case 'locked':
    case 'review-budget-exhausted':
      return { outcome: 'no-match', reason: plan.reasonCode };
    case 'consent-refused':
    case 'opted-out':
      return { outcome: 'consent-constrained', reason: plan.reasonCode };
  }
}

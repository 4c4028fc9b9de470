import type { Authority } from '../pipeline/authority.js';
import { commitPlans } from '../pipeline/commit.js';
import type { PipelineDeps } from '../pipeline/plan.js';
import type { MatchPlan, PlannedBatch } from '../pipeline/types.js';
import { batchChunkDuration, batchRows } from '../metrics.js';
import { ownerAsActor, recordChunk, takeChunk, type BatchJob, type JobResult } from './jobs.js';

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

/**
 * Decides a chunk's rows with reads only, then commits every row's effect and audit event (the pipeline's
 * commit) and its result (the job repository's record) in one transaction.
 */
export async function processChunk(deps: BatchDeps, jobId: string, chunk: number, planner: ChunkPlanner): Promise<ChunkOutcome> {
  const startedAt = Date.now();
  const taken = await takeChunk(deps.db, jobId, chunk);
  if (typeof taken === 'string') return taken;
  const { job, rows } = taken;
  // Ids, kinds and counts only: never a row's content.
  if (taken.started) deps.logger.info({ batchJob: job.id, kind: job.kind, totalRows: job.totalRows, chunks: job.chunkCount }, 'batch job started');
  let results: readonly JobResult[] = [];
  const readable: InputRow[] = [];
  for (const row of rows) if (row.input) readable.push({ seq: row.seq, line: row.line, input: row.input });
  const planned = readable.length > 0 ? await planner(deps, job, readable) : undefined;
  if (planned && planned.rows.length !== readable.length) throw new Error('the planner returned the wrong number of rows');
  const rowPlanBySeq = new Map(readable.map((row, i) => [row.seq, planned!.rows[i]!]));
  const seqOfPlan = new Map<number, number>();
  for (const [seq, rowPlan] of rowPlanBySeq) if ('plan' in rowPlan) seqOfPlan.set(rowPlan.plan, seq);
  const actor = ownerAsActor(job.owner);

  try {
    await deps.db.transaction().execute(async (trx) => {
      const stopped = await recordChunk(trx, jobId, chunk, async () => {
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
        // Read after the effects are written: a new review case's id is known only now.
        results = rows.map((row): JobResult => {
          const rowPlan = rowPlanBySeq.get(row.seq);
          if (!rowPlan || 'rejected' in rowPlan) return { seq: row.seq, line: row.line, outcome: 'rejected', reason: rowPlan?.rejected ?? row.error ?? 'unreadable row' };
          return { seq: row.seq, line: row.line, ...jobResultOf(planned!.batch.plans[rowPlan.plan]!) };
        });
        return results;
      });
      if (stopped) throw new ChunkStopped(stopped); // rolls the effects back
    });
  } catch (error) {
    if (error instanceof ChunkStopped) return error.why;
    throw error;
  }
  // Counted once committed, so a chunk retried after a failure is counted once.
  const byOutcome = new Map<string, number>();
  for (const r of results) byOutcome.set(r.outcome, (byOutcome.get(r.outcome) ?? 0) + 1);
  for (const [outcome, count] of byOutcome) batchRows.inc({ kind: job.kind, outcome }, count);
  const seconds = (Date.now() - startedAt) / 1000;
  batchChunkDuration.observe({ kind: job.kind }, seconds);
  deps.logger.debug({ batchJob: job.id, kind: job.kind, chunk, rows: results.length, durationMs: Math.round(seconds * 1000) }, 'batch chunk done');
  return 'done';
}

class ChunkStopped extends Error {
  constructor(readonly why: 'already-done' | 'job-not-running') {
    super(why);
  }
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

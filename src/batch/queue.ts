import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import type { Db } from '../db/database.js';
import { withDeadline } from '../deadline.js';
import type { Logger } from '../logger.js';
import { batchJobsFinished } from '../metrics.js';
import { redisConnection } from '../shared/redis-connection.js';
import { runPeriodically } from '../periodic.js';
import { planBulkMembers } from './bulk-member-match.js';
import { processChunk, type BatchDeps, type ChunkPlanner } from './chunks.js';
import { chunkRanges, completeJob, failJob, findJob, markDispatched, purgeExpiredJobs, undispatchedJobs, type BatchJob, type JobKind } from './jobs.js';
import { planReconcileRows } from './roster-reconcile.js';

/**
 * Batch jobs on BullMQ: each job is a flow — a `finalize` parent whose children are the job's chunks — so the
 * parent runs once every chunk is done. Job ids are derived from the batch job (`<id>` and `<id>-c<n>`), so
 * dispatching a job twice (the API's immediate attempt and the dispatcher's sweep) adds nothing twice.
 * Postgres is the source of truth: state, progress and results live there; Redis only schedules.
 */

export const BATCH_QUEUE = 'batch';
const CHUNK_ATTEMPTS = 10;

const PLANNERS: Partial<Record<JobKind, ChunkPlanner>> = {
  'bulk-member-match': planBulkMembers,
  'roster-reconcile': planReconcileRows,
};

interface ChunkData {
  jobId: string;
  kind: JobKind;
  chunk: number;
}

const failFast = (redisUrl: string) => ({ ...redisConnection(redisUrl), enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 });

export function createBatchFlowProducer(redisUrl: string, keyPrefix: string): FlowProducer {
  return new FlowProducer({ prefix: `${keyPrefix}bull`, connection: failFast(redisUrl) });
}

/** The batch queue itself, for the reconciler to look up which entries still exist. */
export function createBatchQueue(redisUrl: string, keyPrefix: string): Queue {
  return new Queue(BATCH_QUEUE, { prefix: `${keyPrefix}bull`, connection: failFast(redisUrl) });
}

const DISPATCH_TIMEOUT_MS = 5_000;

/** Hands a job's chunks to the queue and records that it did. Throws if Redis does not take them in time. */
export async function dispatchJob(db: Db, flow: FlowProducer, job: Pick<BatchJob, 'id' | 'kind'>): Promise<void> {
  const chunks = await chunkRanges(db, job.id);
  await withDeadline(
    flow.add({
      name: 'finalize',
      queueName: BATCH_QUEUE,
      data: { jobId: job.id, kind: job.kind, chunk: -1 } satisfies ChunkData,
      // The parent only marks the job completed; it retries like a chunk if the database is briefly away.
      opts: { jobId: finalizeJobId(job.id), attempts: CHUNK_ATTEMPTS, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: { age: 3_600 }, removeOnFail: { age: 86_400 } },
      children: chunks
        .filter((c) => !c.done)
        .map((c) => ({
          name: 'chunk',
          queueName: BATCH_QUEUE,
          data: { jobId: job.id, kind: job.kind, chunk: c.chunk } satisfies ChunkData,
          opts: {
            jobId: chunkJobId(job.id, c.chunk),
            attempts: CHUNK_ATTEMPTS,
            backoff: { type: 'exponential', delay: 1_000 },
            failParentOnFailure: true,
            removeOnComplete: { age: 3_600 },
            removeOnFail: { age: 86_400 },
          },
        })),
    }),
    DISPATCH_TIMEOUT_MS,
    'batch queue did not answer in time',
  );
  await markDispatched(db, job.id);
}

const finalizeJobId = (jobId: string) => jobId;
const chunkJobId = (jobId: string, chunk: number) => `${jobId}-c${chunk}`;

/**
 * The reconciler's half for batch jobs (Redis lost its data, or part of it): a job that Postgres says is
 * dispatched and still queued or running must have its `finalize` parent and every chunk not yet done in the
 * queue; where any is gone, the job is dispatched again. Answers how many jobs it re-dispatched.
 *
 * Dispatching again is safe while entries do exist, so several reconcilers (one per worker process) may race:
 * the job ids derive from the job, BullMQ adds a flow atomically and treats an id it already holds as a
 * duplicate (an existing chunk is re-attached to the same parent, a missing one is added to it), and a chunk
 * that runs twice finds itself done in Postgres (`done_at`) and writes nothing.
 */
export async function reconcileBatchJobs(db: Db, queue: Queue, flow: FlowProducer): Promise<number> {
  const live = await db
    .selectFrom('batch_jobs')
    .select(['id', 'kind'])
    .where('state', 'in', ['queued', 'running'])
    .where('dispatched_at', 'is not', null)
    .where('kind', 'in', Object.keys(PLANNERS) as JobKind[])
    .orderBy('created_at')
    .limit(500)
    .execute();
  let redispatched = 0;
  for (const job of live) {
    const pending = (await chunkRanges(db, job.id)).filter((c) => !c.done);
    // Every chunk is done in Postgres: finish the job here, whatever the queue says. After a Redis loss a
    // re-added chunk can share its id with the one a worker was still finishing, and BullMQ may then leave the
    // finalize parent waiting for a child it will never hear from. completeJob is the finalize step itself,
    // conditional and idempotent, so a finalize that also runs changes nothing.
    if (pending.length === 0) {
      if (await completeJob(db, job.id)) redispatched++;
      continue;
    }
    const ids = [finalizeJobId(job.id), ...pending.map((c) => chunkJobId(job.id, c.chunk))];
    const states = await withDeadline(Promise.all(ids.map((id) => queue.getJobState(id))), DISPATCH_TIMEOUT_MS, 'batch queue did not answer in time');
    if (!states.includes('unknown')) continue;
    // Only while the job still runs: it may have finished since it was listed (its entries then go away).
    const still = await db.selectFrom('batch_jobs').select('id').where('id', '=', job.id).where('state', 'in', ['queued', 'running']).executeTakeFirst();
    if (!still) continue;
    await dispatchJob(db, flow, { id: job.id, kind: job.kind as JobKind });
    redispatched++;
  }
  return redispatched;
}

/**
 * The dispatcher: every few seconds, hands to the queue the jobs committed but never dispatched (Redis was
 * down at upload, or the API died between commit and dispatch), and deletes jobs past their retention.
 */
export function startBatchDispatcher(db: Db, flow: FlowProducer, logger: Logger, retentionHours: number, intervalMs = 2_000): { stop(): Promise<void> } {
  return runPeriodically(
    async (isStopped) => {
      for (const job of await undispatchedJobs(db, 2)) {
        if (isStopped()) break;
        await dispatchJob(db, flow, job);
      }
      await purgeExpiredJobs(db, retentionHours);
    },
    { intervalMs, logger, failing: 'batch dispatcher cannot dispatch; will retry', recovered: 'batch dispatcher recovered' },
  );
}

export function startBatchWorker(deps: BatchDeps, logger: Logger): Worker {
  const { config } = deps;
  const worker = new Worker(
    BATCH_QUEUE,
    async (job: Job<ChunkData>) => {
      const { jobId, kind, chunk } = job.data;
      if (job.name === 'finalize') {
        if (!(await completeJob(deps.db, jobId))) return 'not-completed';
        await logJobFinished(deps.db, logger, jobId);
        return 'completed';
      }
      const planner = PLANNERS[kind];
      if (!planner) throw new Error(`no chunk planner for ${kind}`);
      return processChunk(deps, jobId, chunk, planner);
    },
    {
      prefix: `${config.redisKeyPrefix}bull`,
      connection: { ...redisConnection(config.redisUrl), maxRetriesPerRequest: null },
      concurrency: config.batch.concurrency,
      // A worker that dies holding a chunk loses its lock after lockDuration; the chunk then runs again
      // elsewhere, and finds nothing committed (or, if the commit landed, finds itself done).
      lockDuration: config.batch.lockSeconds * 1_000,
      stalledInterval: Math.max(1_000, Math.floor((config.batch.lockSeconds * 1_000) / 2)),
      maxStalledCount: 5,
    },
  );
  worker.on('error', (error: Error) => logger.warn({ errName: error.name }, 'batch worker connection problem'));
  worker.on('failed', (job, error) => {
    if (!job) return;
    logger.warn({ batchJob: job.data.jobId, chunk: job.data.chunk, attempt: job.attemptsMade, errName: error.name }, 'batch chunk failed');
    if (job.attemptsMade >= (job.opts.attempts ?? 1)) {
      void failJob(deps.db, job.data.jobId, 'a chunk failed after all its attempts')
        .then((failed) => (failed ? logJobFinished(deps.db, logger, job.data.jobId) : undefined))
        .catch(() => undefined);
    }
  });
  return worker;
}

/**
 * The job's end log line (ids, kind, state, row counts, duration — never a row's content) and its count in
 * member_match_batch_jobs_finished_total. The job's start is logged by the chunk that started it (chunks.ts).
 */
async function logJobFinished(db: Db, logger: Logger, jobId: string): Promise<void> {
  const job = await findJob(db, jobId);
  if (!job) return;
  batchJobsFinished.inc({ kind: job.kind, state: job.state });
  const durationMs = job.startedAt && job.finishedAt ? job.finishedAt.getTime() - job.startedAt.getTime() : undefined;
  const line = { batchJob: job.id, kind: job.kind, state: job.state, totalRows: job.totalRows, rowsDone: job.rowsDone, counts: job.counts, durationMs };
  if (job.state === 'completed') logger.info(line, 'batch job finished');
  else logger.warn(line, 'batch job finished');
}

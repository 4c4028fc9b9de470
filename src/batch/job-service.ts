import type { FlowProducer } from 'bullmq';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { dispatchJob } from './queue.js';
import { createJob, type BatchJob, type JobKind, type JobOwner, type JobRow } from './jobs.js';

/**
 * Starting a batch job from the API: store it with its rows, then hand it to the queue. A dispatch that fails
 * (Redis down) is not an error for the caller: the job is committed, and the workers' dispatcher picks it up.
 */
export async function startJob(
  deps: { db: Db; config: Config; logger: Logger; batchFlow?: FlowProducer | undefined },
  job: { kind: JobKind; owner: JobOwner; contentHash: string; options: Record<string, unknown> },
  rows: () => AsyncIterable<JobRow> | Iterable<JobRow>,
): Promise<{ job: BatchJob; created: boolean }> {
  // Bulk matches are small (at most BULK_MAX_MEMBERS) and a partner polls them: smaller chunks give a finer
  // X-Progress and spread even a 1,000-member request over several workers.
  const chunkSize = job.kind === 'bulk-member-match' ? Math.min(deps.config.batch.chunkSize, BULK_CHUNK_SIZE) : deps.config.batch.chunkSize;
  const started = await createJob(deps.db, { ...job, chunkSize }, rows);
  if (started.created && deps.batchFlow) {
    await dispatchJob(deps.db, deps.batchFlow, started.job).catch((error: unknown) => {
      deps.logger.warn({ batchJob: started.job.id, errName: (error as Error).name }, 'batch job not dispatched yet; the dispatcher will retry');
    });
  }
  return started;
}

const BULK_CHUNK_SIZE = 100;

/** A job's progress as the status endpoints report it. */
export function jobStatus(job: BatchJob, selfUrl: string) {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    totalRows: job.totalRows,
    rowsDone: job.rowsDone,
    progress: job.totalRows === 0 ? 1 : Math.round((job.rowsDone / job.totalRows) * 10_000) / 10_000,
    chunks: { total: job.chunkCount, done: job.chunksDone },
    counts: job.counts,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    ...(job.summary ? { summary: job.summary } : {}),
    ...(job.error ? { error: job.error } : {}),
    links: { self: selfUrl, results: `${selfUrl}/results` },
  };
}

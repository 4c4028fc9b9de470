import { sql, type Selectable } from 'kysely';
import type { BatchJobsTable, BatchResultsTable } from '../db/schema.js';
import type { SystemValue } from '../shared/system-value.js';
import type { Db, DbOrTx, Tx } from '../db/database.js';
import type { Actor } from '../identity/actor.js';
import { BusinessRuleError } from '../errors.js';

/**
 * The batch job repository: jobs, their input rows, chunks and results (migration 0010). A job is created
 * with all its rows in one transaction, so a job that exists is complete; workers only ever add results.
 */

export type JobKind = 'bulk-member-match' | 'roster-reconcile' | 'index-import';
export type JobState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type RowOutcome = 'matched' | 'review' | 'no-match' | 'consent-constrained' | 'rejected';

/** Who started a job: what the audit events of its rows name as the actor (no PHI). */
export type JobOwner = Pick<Actor, 'actorClass' | 'subject' | 'clientId' | 'organization' | 'protocol' | 'tokenJti' | 'scopes'> & {
  delegationChain?: readonly string[] | undefined;
};

export interface BatchJob {
  id: string;
  kind: JobKind;
  state: JobState;
  owner: JobOwner;
  contentHash: string;
  options: Record<string, unknown>;
  totalRows: number;
  chunkSize: number;
  chunkCount: number;
  chunksDone: number;
  rowsDone: number;
  counts: Record<RowOutcome, number>;
  summary: Record<string, unknown> | null;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** One input row: what to resolve, or why it could not be read (with its line in the upload). */
export type JobRow = { line: number; input: Record<string, unknown> } | { line: number; error: string };

export interface JobResult {
  seq: number;
  line: number;
  outcome: RowOutcome;
  memberUuid?: string | undefined;
  memberId?: string | undefined;
  band?: string | undefined;
  probability?: number | undefined;
  reviewCaseId?: string | undefined;
  reason?: string | undefined;
}

export function jobOwner(actor: Actor): JobOwner {
  return {
    actorClass: actor.actorClass,
    subject: actor.subject,
    clientId: actor.clientId,
    organization: actor.organization,
    protocol: actor.protocol,
    tokenJti: actor.tokenJti,
    scopes: [...actor.scopes],
    ...(actor.delegationChain ? { delegationChain: [...actor.delegationChain] } : {}),
  };
}

/** The owner as an audit actor: the job's rows are decided on behalf of whoever started it. */
export function ownerAsActor(owner: JobOwner): Actor {
  return { ...owner, purposeOfUse: undefined };
}

const ROW_INSERT_BATCH = 1_000;

/**
 * Creates the job with its rows and chunks, or finds the one this client already started for the same content
 * (the same upload is the same job, unless that job was cancelled or failed). `rows` is consumed only when
 * the job is new.
 */
export async function createJob(
  db: Db,
  job: { kind: JobKind; owner: JobOwner; contentHash: string; options: Record<string, unknown>; chunkSize: number },
  rows: () => AsyncIterable<JobRow> | Iterable<JobRow>,
): Promise<{ job: BatchJob; created: boolean }> {
  const existing = await findJobByContent(db, job.kind, job.owner.clientId, job.contentHash);
  if (existing) return { job: existing, created: false };
  const id = await db.transaction().execute(async (trx) => {
    const jobId = await insertJob(trx, job);
    if (!jobId) return undefined; // a concurrent upload of the same content won
    let seq = 0;
    let pending: JobRow[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const first = seq - pending.length;
      await sql`INSERT INTO batch_rows (job_id, seq, line, input, error)
        SELECT ${jobId}::uuid, s, l, i, e FROM unnest(${pending.map((_, k) => first + k)}::int[], ${pending.map((r) => r.line)}::int[],
          ${pending.map((r) => ('input' in r ? JSON.stringify(r.input) : null))}::jsonb[], ${pending.map((r) => ('error' in r ? r.error : null))}::text[]) AS t(s, l, i, e)`.execute(trx);
      pending = [];
    };
    for await (const row of rows()) {
      pending.push(row);
      seq++;
      if (pending.length >= ROW_INSERT_BATCH) await flush();
    }
    await flush();
    if (seq === 0) throw new BusinessRuleError('upload-empty', 'the upload has no rows');
    const chunkCount = Math.ceil(seq / job.chunkSize);
    if (chunkCount > 0) {
      await sql`INSERT INTO batch_chunks (job_id, chunk, first_seq, last_seq)
        SELECT ${jobId}::uuid, c, c * ${job.chunkSize}, least((c + 1) * ${job.chunkSize}, ${seq}) - 1 FROM generate_series(0, ${chunkCount - 1}) AS c`.execute(trx);
    }
    await trx.updateTable('batch_jobs').set({ total_rows: seq, chunk_count: chunkCount }).where('id', '=', jobId).execute();
    return jobId;
  });
  if (id === undefined) {
    const winner = await findJobByContent(db, job.kind, job.owner.clientId, job.contentHash);
    if (!winner) throw new Error('a concurrent job for the same content vanished');
    return { job: winner, created: false };
  }
  return { job: (await findJob(db, id))!, created: true };
}

/**
 * Inserts a job row, unless this client already has a live job for the same content (then undefined). A job
 * worked in place (an index import) starts `running`; one worked by the queue starts `queued`.
 */
export async function insertJob(
  db: DbOrTx,
  job: { kind: JobKind; owner: JobOwner; contentHash: string; options: Record<string, unknown>; chunkSize: number; running?: boolean },
): Promise<string | undefined> {
  const inserted = await sql<{ id: string }>`
    INSERT INTO batch_jobs (kind, state, started_at, owner_class, owner_client_id, owner_org_system, owner_org_value, content_hash, options, chunk_size)
    VALUES (${job.kind}, ${job.running ? 'running' : 'queued'}, ${job.running ? new Date() : null}, ${job.owner.actorClass}, ${job.owner.clientId},
            ${job.owner.organization.system}, ${job.owner.organization.value}, ${job.contentHash},
            ${JSON.stringify({ ...job.options, owner: job.owner })}, ${job.chunkSize})
    ON CONFLICT (kind, owner_client_id, content_hash) WHERE state NOT IN ('cancelled', 'failed') DO NOTHING
    RETURNING id`.execute(db);
  return inserted.rows[0]?.id;
}

export async function findJobByContent(db: DbOrTx, kind: JobKind, clientId: string, contentHash: string): Promise<BatchJob | undefined> {
  const row = await db
    .selectFrom('batch_jobs')
    .selectAll()
    .where('kind', '=', kind)
    .where('owner_client_id', '=', clientId)
    .where('content_hash', '=', contentHash)
    .where('state', 'not in', ['cancelled', 'failed'])
    .executeTakeFirst();
  return row && toJob(row);
}

export async function findJob(db: DbOrTx, id: string): Promise<BatchJob | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const row = await db.selectFrom('batch_jobs').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toJob(row);
}

/** The job, if it is of this kind and this client started it: anyone else's job does not exist for them. */
export async function findOwnJob(db: DbOrTx, id: string, kind: JobKind, clientId: string): Promise<BatchJob | undefined> {
  const job = await findJob(db, id);
  return job && job.kind === kind && job.owner.clientId === clientId ? job : undefined;
}

/** The most recent jobs, newest first. */
export async function listJobs(db: DbOrTx, limit: number): Promise<BatchJob[]> {
  const rows = await db.selectFrom('batch_jobs').selectAll().orderBy('created_at', 'desc').limit(limit).execute();
  return rows.map(toJob);
}

/** Cancels a job still queued or running; returns whether it did. Chunks check the state before they write. */
export async function cancelJob(db: DbOrTx, id: string): Promise<boolean> {
  const result = await db
    .updateTable('batch_jobs')
    .set({ state: 'cancelled', finished_at: new Date() })
    .where('id', '=', id)
    .where('state', 'in', ['queued', 'running'])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Marks a job completed once every chunk is done; returns whether it did. */
export async function completeJob(db: DbOrTx, jobId: string): Promise<boolean> {
  const result = await db
    .updateTable('batch_jobs')
    .set({ state: 'completed', finished_at: new Date() })
    .where('id', '=', jobId)
    .where('state', 'in', ['queued', 'running'])
    .where(sql<boolean>`chunks_done = chunk_count`)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Marks a job still queued or running failed; returns whether it did. */
export async function failJob(db: DbOrTx, jobId: string, reason: string): Promise<boolean> {
  const result = await db
    .updateTable('batch_jobs')
    .set({ state: 'failed', finished_at: new Date(), error: reason })
    .where('id', '=', jobId)
    .where('state', 'in', ['queued', 'running'])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Deletes a job with its rows and results (what it did — links, review cases, audit events — stays). */
export async function deleteJob(db: DbOrTx, id: string): Promise<void> {
  await db.deleteFrom('batch_jobs').where('id', '=', id).execute();
}

export async function markDispatched(db: DbOrTx, id: string): Promise<void> {
  await db.updateTable('batch_jobs').set({ dispatched_at: new Date() }).where('id', '=', id).execute();
}

/** Jobs committed but not yet handed to the queue (Redis was down, or the process died in between). */
export async function undispatchedJobs(db: DbOrTx, olderThanSeconds: number): Promise<BatchJob[]> {
  const rows = await db
    .selectFrom('batch_jobs')
    .selectAll()
    .where('state', '=', 'queued')
    .where('dispatched_at', 'is', null)
    .where('created_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .orderBy('created_at')
    .limit(50)
    .execute();
  return rows.map(toJob);
}

export async function chunkRanges(db: DbOrTx, jobId: string): Promise<{ chunk: number; firstSeq: number; lastSeq: number; done: boolean }[]> {
  const rows = await db.selectFrom('batch_chunks').selectAll().where('job_id', '=', jobId).orderBy('chunk').execute();
  return rows.map((r) => ({ chunk: r.chunk, firstSeq: r.first_seq, lastSeq: r.last_seq, done: r.done_at !== null }));
}

/** Results in row order, from `afterSeq` (exclusive), at most `limit`. */
export async function jobResults(db: DbOrTx, jobId: string, afterSeq: number, limit: number): Promise<JobResult[]> {
  const rows = await db
    .selectFrom('batch_results')
    .selectAll()
    .where('job_id', '=', jobId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map(toResult);
}

function toResult(r: Selectable<BatchResultsTable>): JobResult {
  return {
    seq: r.seq,
    line: r.line,
    outcome: r.outcome as RowOutcome,
    memberUuid: r.member_uuid ?? undefined,
    memberId: r.member_id ?? undefined,
    band: r.band ?? undefined,
    probability: r.probability ?? undefined,
    reviewCaseId: r.review_case_id ?? undefined,
    reason: r.reason ?? undefined,
  };
}

/** One input row of a chunk: what to resolve (null when the row could not be read, with its error). */
export interface ChunkRow {
  seq: number;
  line: number;
  input: Record<string, unknown> | null;
  error: string | null;
}

/**
 * A worker takes a chunk: the job turns `running` if it was `queued`, the attempt is counted, and the chunk's
 * rows are read. Answers why not when the job is no longer running or the chunk is already done; `started`
 * says this call is the one that started the job (for its start log line).
 */
export async function takeChunk(
  db: Db,
  jobId: string,
  chunk: number,
): Promise<{ job: BatchJob; rows: ChunkRow[]; started: boolean } | 'already-done' | 'job-not-running'> {
  const job = await findJob(db, jobId);
  if (!job || (job.state !== 'queued' && job.state !== 'running')) return 'job-not-running';
  let started = false;
  if (job.state === 'queued') {
    const result = await db.updateTable('batch_jobs').set({ state: 'running', started_at: new Date() }).where('id', '=', jobId).where('state', '=', 'queued').executeTakeFirst();
    started = Number(result.numUpdatedRows) > 0;
  }
  const range = await db.selectFrom('batch_chunks').selectAll().where('job_id', '=', jobId).where('chunk', '=', chunk).executeTakeFirst();
  if (!range) throw new Error('no such chunk');
  if (range.done_at) return 'already-done';
  await db.updateTable('batch_chunks').set({ attempts: sql<number>`attempts + 1` }).where('job_id', '=', jobId).where('chunk', '=', chunk).execute();
  const rows = await db
    .selectFrom('batch_rows')
    .select(['seq', 'line', 'input', 'error'])
    .where('job_id', '=', jobId)
    .where('seq', '>=', range.first_seq)
    .where('seq', '<=', range.last_seq)
    .orderBy('seq')
    .execute();
  return { job, rows, started };
}

const OUTCOME_COLUMN: Record<RowOutcome, 'matched' | 'review' | 'no_match' | 'consent_constrained' | 'rejected'> = {
  matched: 'matched',
  review: 'review',
  'no-match': 'no_match',
  'consent-constrained': 'consent_constrained',
  rejected: 'rejected',
};

/**
 * Records a chunk in one transaction: `writeEffects` writes the rows' effects and answers their results; then
 * the results, the chunk done, its counts added to the job. The chunk is locked first; the job row is updated last and only while the job still runs,
 * so a cancellation that landed meanwhile rolls the chunk back rather than writing into a cancelled job.
 * Answers why nothing may be recorded (the caller must roll back), or undefined when it was.
 */
export async function recordChunk(
  trx: Tx,
  jobId: string,
  chunk: number,
  writeEffects: () => Promise<readonly JobResult[]>,
): Promise<'already-done' | 'job-not-running' | undefined> {
  const locked = await sql<{ done_at: Date | null }>`
    SELECT done_at FROM batch_chunks WHERE job_id = ${jobId} AND chunk = ${chunk} FOR UPDATE`.execute(trx);
  if (locked.rows[0]?.done_at) return 'already-done';
  const results = await writeEffects();
  if (results.length > 0) {
    const col = <K extends keyof JobResult>(k: K) => results.map((r) => r[k] ?? null);
    await sql`INSERT INTO batch_results (job_id, seq, line, outcome, member_uuid, member_id, band, probability, review_case_id, reason)
      SELECT ${jobId}::uuid, * FROM unnest(${col('seq')}::int[], ${col('line')}::int[], ${col('outcome')}::text[], ${col('memberUuid')}::uuid[],
        ${col('memberId')}::text[], ${col('band')}::text[], ${col('probability')}::float8[], ${col('reviewCaseId')}::uuid[], ${col('reason')}::text[])`.execute(trx);
  }
  await trx.updateTable('batch_chunks').set({ done_at: new Date() }).where('job_id', '=', jobId).where('chunk', '=', chunk).execute();
  const counts = Object.fromEntries(Object.values(OUTCOME_COLUMN).map((c) => [c, 0])) as Record<string, number>;
  for (const r of results) counts[OUTCOME_COLUMN[r.outcome]]! += 1;
  const updated = await sql<{ id: string }>`
    UPDATE batch_jobs SET rows_done = rows_done + ${results.length}, chunks_done = chunks_done + 1,
      matched = matched + ${counts.matched}, review = review + ${counts.review}, no_match = no_match + ${counts.no_match},
      consent_constrained = consent_constrained + ${counts.consent_constrained}, rejected = rejected + ${counts.rejected}
    WHERE id = ${jobId} AND state = 'running' RETURNING id`.execute(trx);
  return updated.rows.length === 0 ? 'job-not-running' : undefined;
}

/** Every row of a (small) bulk job with its result, in order: what the result Groups are built from. */
export async function rowsWithResults<Input>(db: DbOrTx, jobId: string): Promise<{ input: Input | null; result: JobResult }[]> {
  const rows = await db
    .selectFrom('batch_rows as r')
    .innerJoin('batch_results as s', (join) => join.onRef('s.job_id', '=', 'r.job_id').onRef('s.seq', '=', 'r.seq'))
    .selectAll('s')
    .select('r.input')
    .where('r.job_id', '=', jobId)
    .orderBy('r.seq')
    .execute();
  return rows.map(({ input, ...result }) => ({ input: input as Input | null, result: toResult(result) }));
}

/** Deletes jobs (rows, chunks, results with them) finished longer ago than the retention period. */
export async function purgeExpiredJobs(db: DbOrTx, retentionHours: number): Promise<number> {
  const result = await db
    .deleteFrom('batch_jobs')
    .where('finished_at', '<', sql<Date>`now() - make_interval(secs => ${Math.round(retentionHours * 3600)})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

type JobRowRecord = Selectable<BatchJobsTable>;

function toJob(row: JobRowRecord): BatchJob {
  const { owner, ...options } = row.options as { owner: JobOwner } & Record<string, unknown>;
  const organization: SystemValue = { system: row.owner_org_system, value: row.owner_org_value };
  return {
    id: row.id,
    kind: row.kind as JobKind,
    state: row.state as JobState,
    owner: { ...owner, clientId: row.owner_client_id, organization },
    contentHash: row.content_hash,
    options,
    totalRows: row.total_rows,
    chunkSize: row.chunk_size,
    chunkCount: row.chunk_count,
    chunksDone: row.chunks_done,
    rowsDone: row.rows_done,
    counts: {
      matched: row.matched,
      review: row.review,
      'no-match': row.no_match,
      'consent-constrained': row.consent_constrained,
      rejected: row.rejected,
    },
    summary: (row.summary as Record<string, unknown> | null) ?? null,
    error: row.error,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

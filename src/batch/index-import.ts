import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import { appendAuditEvent } from '../audit/audit-trail.js';
import type { Db } from '../db/database.js';
import { fileDigest } from '../shared/file-digest.js';
import { refreshTermFrequencies } from '../members/term-frequencies.js';
import type { ImportSummary } from '../members/roster-format/errors.js';
import { importRoster } from '../members/roster-import.js';
import { failJob, findJob, findJobByContent, insertJob, ownerAsActor, type BatchJob, type JobOwner } from './jobs.js';

/**
 * Index maintenance: importing our own eligibility roster, as a tracked job (`batch_jobs`, kind
 * `index-import`). The import itself (src/members/roster-import.ts) finds new and changed members and keeps
 * their blocking keys current; this job adds
 *  - ended members: with `full`, the file is the whole eligibility snapshot, and a member it no longer carries
 *    is marked ended (`members.ended_at`). Ended members stay in the index and stay matchable: a former
 *    member's data is exactly what a new payer asks for under the Payer-to-Payer rule.
 *  - reinstated members: an ended member a later file carries again is no longer ended;
 *  - term frequencies: when the index changed, the name frequencies are recomputed and the active model
 *    re-saved with them (src/members/term-frequencies.ts);
 *  - progress while it runs, the summary when it ends, and an audit event.
 * The same file from the same operator is the same job (already done) unless `force` is given.
 */

export interface IndexImportSummary extends Omit<ImportSummary, 'errors'> {
  ended: number;
  reinstated: number;
  model: string | undefined;
  modelChanged: boolean;
  errors: ImportSummary['errors'];
}

const PROGRESS_EVERY_MS = 1_000;

export async function runIndexImport(
  db: Db,
  file: string,
  options: { memberIdentifierSystem: string; owner: JobOwner; full: boolean; force?: boolean; refreshFrequencies?: boolean },
): Promise<{ job: BatchJob; created: boolean }> {
  const digest = await fileDigest(file);
  const contentHash = options.force ? `${digest}:${randomUUID()}` : digest;
  const { owner } = options;
  const jobId = await insertJob(db, {
    kind: 'index-import',
    owner,
    contentHash,
    options: { file: path.basename(file), full: options.full },
    chunkSize: 0,
    running: true,
  });
  if (!jobId) return { job: (await findJobByContent(db, 'index-import', owner.clientId, contentHash))!, created: false };

  try {
    let lastProgress = 0;
    const summary = await importRoster(db, file, {
      memberIdentifierSystem: options.memberIdentifierSystem,
      onProgress: (progress) => {
        if (Date.now() - lastProgress < PROGRESS_EVERY_MS) return;
        lastProgress = Date.now();
        void db.updateTable('batch_jobs').set({ rows_done: progress.rows }).where('id', '=', jobId).execute().catch(() => undefined);
      },
      onMembersSeen: async (trx, memberIds) => {
        await sql`INSERT INTO index_import_seen (job_id, member_id) SELECT ${jobId}::uuid, unnest(${memberIds}::text[]) ON CONFLICT DO NOTHING`.execute(trx);
      },
    });
    const { ended, reinstated } = await db.transaction().execute(async (trx) => {
      const back = await sql`UPDATE members m SET ended_at = NULL WHERE m.ended_at IS NOT NULL
        AND EXISTS (SELECT 1 FROM index_import_seen s WHERE s.job_id = ${jobId} AND s.member_id = m.member_id)`.execute(trx);
      const gone = options.full
        ? await sql`UPDATE members m SET ended_at = now() WHERE m.ended_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM index_import_seen s WHERE s.job_id = ${jobId} AND s.member_id = m.member_id)`.execute(trx)
        : { numAffectedRows: 0n };
      await trx.deleteFrom('index_import_seen').where('job_id', '=', jobId).execute();
      return { ended: Number(gone.numAffectedRows ?? 0), reinstated: Number(back.numAffectedRows ?? 0) };
    });
    const changed = summary.inserted + summary.updated + ended + reinstated > 0;
    const model = options.refreshFrequencies === false || !changed ? undefined : await refreshTermFrequencies(db);
    const result: IndexImportSummary = { ...summary, ended, reinstated, model: model?.version, modelChanged: model?.changed ?? false };
    const { errors, ...counts } = result;
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('batch_jobs')
        .set({
          state: 'completed',
          finished_at: new Date(),
          total_rows: summary.rows,
          rows_done: summary.rows,
          rejected: summary.rejected,
          summary: JSON.stringify({ ...counts, errors: errors.slice(0, 100) }),
        })
        .where('id', '=', jobId)
        .execute();
      await appendAuditEvent(trx, { actor: ownerAsActor(owner), operation: 'index-import', outcome: 'success', reasonCode: 'completed', details: { batchJob: jobId, ...counts } });
    });
    return { job: (await findJob(db, jobId))!, created: true };
  } catch (error) {
    await db.deleteFrom('index_import_seen').where('job_id', '=', jobId).execute().catch(() => undefined);
    await failJob(db, jobId, 'the import stopped before the end; run it again (it is idempotent)');
    throw error;
  }
}

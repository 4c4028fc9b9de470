import { bulkContentHash, bulkResultGroups, bulkResultParameters, parseBulkMemberMatchRequest, RESULT_GROUPS, type BulkMemberRow } from '../../../batch/bulk-member-match.js';
import { startJob } from '../../../batch/job-service.js';
import { cancelJob, deleteJob, findOwnJob, jobOwner, rowsWithResults, type BatchJob } from '../../../batch/jobs.js';
import { InvalidRequestError, NotFoundError, ProcessingFailedError, TooManyRequestsError } from '../../../errors.js';
import { withoutEmptyArrays } from '../../../fhir/resources.js';
import { authorityOf } from '../../../pipeline/authority.js';
import { tenantLockout } from '../../../pipeline/plan.js';
import { inProgressHeaders, jobWork } from '../../async-status.js';
import type { AppDeps } from '../../deps.js';
import { ok, type OperationContext, type OperationResult } from '../operation.js';

/**
 * PDex `Group/$bulk-member-match`: validated at kick-off, decided by the batch workers through the match
 * pipeline (src/batch/bulk-member-match.ts plans each chunk), answered at the status URL. A job is visible only
 * to the client that started it.
 */

export const NDJSON = 'application/fhir+ndjson';

export interface BulkKickOff {
  body: unknown;
  respondAsync: boolean;
  /** `_outputFormat` as asked, if at all. */
  outputFormat: unknown;
}

export async function bulkMemberMatchKickOff(deps: AppDeps, { actor, audit }: OperationContext, request: BulkKickOff): Promise<OperationResult> {
  if (!request.respondAsync) {
    throw new InvalidRequestError('respond-async-required', '$bulk-member-match is asynchronous: send Prefer: respond-async');
  }
  const outputFormat = bulkOutputFormat(request.outputFormat);
  const members = parseBulkMemberMatchRequest(request.body, deps.config.batch.bulkMaxMembers);
  // A locked tenant's bulk request is refused whole, before anything is stored; a lockout that trips while a
  // job runs answers its remaining members as not matched (src/pipeline/plan.ts).
  const lockedFor = await tenantLockout(deps.redis, authorityOf(actor), deps.db);
  if (lockedFor > 0) throw new TooManyRequestsError('matching-locked', "this client's member matching is suspended after suspicious activity", lockedFor);
  const { job, created } = await startJob(
    deps,
    { kind: 'bulk-member-match', owner: jobOwner(actor), contentHash: bulkContentHash(request.body, outputFormat), options: { outputFormat } },
    () => members.map((parameters, i) => ({ line: i + 1, input: { parameters } as unknown as Record<string, unknown> })),
  );
  Object.assign(audit.details, { batchJob: job.id, members: members.length, newJob: created });
  return {
    status: 202,
    headers: { 'Content-Location': statusUrl(deps, job.id) },
    audit: { outcome: 'success', reasonCode: created ? 'accepted' : 'same-request' },
  };
}

export async function bulkMemberMatchStatus(deps: AppDeps, context: OperationContext, jobId: string): Promise<OperationResult> {
  const job = await ownBulkJob(deps, context, jobId);
  const work = jobWork(job, deps.config.batch.retryAfterSeconds, 'members');
  if (work.state === 'failed') throw new ProcessingFailedError('job-failed', 'the bulk match failed on our side; submit it again');
  if (work.state === 'in-progress') return { status: 202, headers: inProgressHeaders(work), audit: { outcome: 'success', reasonCode: 'in-progress' } };
  if (job.options.outputFormat === NDJSON) {
    // STU 2.2: a bulk-data manifest with one Group per NDJSON file.
    const manifest = {
      transactionTime: job.finishedAt?.toISOString(),
      request: `${deps.config.fhirBaseUrl}/Group/$bulk-member-match`,
      requiresAccessToken: true,
      output: RESULT_GROUPS.map((g) => ({ type: 'Group', url: `${statusUrl(deps, job.id)}/${g.parameter}.ndjson`, extension: { parameter: g.parameter } })),
      error: [],
    };
    return { ...ok(manifest), contentType: 'application/json' };
  }
  const groups = bulkResultGroups(deps.config, job, await rowsWithResults<BulkMemberRow>(deps.db, job.id));
  Object.assign(context.audit.details, job.counts);
  return ok(bulkResultParameters(groups));
}

export async function bulkMemberMatchOutput(deps: AppDeps, context: OperationContext, jobId: string, file: string): Promise<OperationResult> {
  const job = await ownBulkJob(deps, context, jobId);
  const group = RESULT_GROUPS.find((g) => `${g.parameter}.ndjson` === file);
  if (job.state !== 'completed' || !group) throw new NotFoundError('not-found', 'no such output file');
  const groups = bulkResultGroups(deps.config, job, await rowsWithResults<BulkMemberRow>(deps.db, job.id));
  return { ...ok(`${JSON.stringify(withoutEmptyArrays(groups[group.parameter]))}\n`), contentType: NDJSON };
}

/**
 * Running: cancelled (chunks already committed keep their links and cases, as single matches would). Finished:
 * its results are deleted. Either way the status URL then answers 404.
 */
export async function bulkMemberMatchCancel(deps: AppDeps, context: OperationContext, jobId: string): Promise<OperationResult> {
  const job = await ownBulkJob(deps, context, jobId);
  if (!(await cancelJob(deps.db, job.id))) await deleteJob(deps.db, job.id);
  return { status: 202, audit: { outcome: 'success', reasonCode: 'cancelled' } };
}

/** The caller's own bulk job, or 404: another client's job does not exist for it. */
async function ownBulkJob(deps: AppDeps, { actor, audit }: OperationContext, jobId: string): Promise<BatchJob> {
  const job = await findOwnJob(deps.db, jobId, 'bulk-member-match', actor.clientId);
  if (!job || job.state === 'cancelled') throw new NotFoundError('not-found', 'no such bulk match request for this client');
  audit.details.batchJob = job.id;
  return job;
}

const statusUrl = (deps: AppDeps, jobId: string) => `${deps.config.fhirBaseUrl}/bulk-member-match-status/${jobId}`;

/** STU 2.1 answers with a Parameters; `_outputFormat=application/fhir+ndjson` asks for the STU 2.2 manifest. */
function bulkOutputFormat(asked: unknown): string {
  if (asked === undefined) return 'application/fhir+json';
  if (asked === NDJSON || asked === 'application/ndjson' || asked === 'ndjson') return NDJSON;
  if (asked === 'application/fhir+json') return asked;
  throw new InvalidRequestError('output-format-unsupported', '_outputFormat must be application/fhir+json (STU 2.1) or application/fhir+ndjson (STU 2.2)');
}

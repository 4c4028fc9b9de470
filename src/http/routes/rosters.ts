import { Router, type Request, type Response } from 'express';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { jobStatus, startJob } from '../../batch/job-service.js';
import { cancelJob, findOwnJob, jobOwner, jobResults, type JobResult } from '../../batch/jobs.js';
import { reconcileRows, spoolUpload } from '../../batch/roster-reconcile.js';
import { BusinessRuleError, ConflictError, NotFoundError, UnsupportedMediaTypeError } from '../../errors.js';
import type { RosterFormat } from '../../members/roster-format/items.js';
import type { AppDeps } from '../deps.js';
import { jobWork } from '../async-status.js';
import { methodNotAllowed } from '../errors.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit, requireAction } from '../request-context.js';

/**
 * Roster reconciliation for our own batch jobs (workload tokens with `roster:reconcile`):
 *
 *   POST   /rosters              the roster as the body (text/csv in the import format, or NDJSON Patients;
 *                                Content-Encoding: gzip accepted) → 202 + Location; the same roster again → 200
 *                                and the same job
 *   GET    /rosters/{id}         state, progress, counts by outcome
 *   GET    /rosters/{id}/results NDJSON, one line per input row in file order (rows decided so far)
 *   DELETE /rosters/{id}         cancels a queued or running job
 *
 * A job is visible only to the workload that started it.
 */

const RESULT_PAGE = 5_000;

function uploadFormat(req: Request): RosterFormat {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'text/csv') return 'csv';
  if (['application/x-ndjson', 'application/ndjson', 'application/fhir+ndjson'].includes(type)) return 'ndjson';
  throw new UnsupportedMediaTypeError('unsupported-media-type', 'send text/csv (the roster import format) or application/fhir+ndjson (Patients)');
}

function uploadIsGzip(req: Request): boolean {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'gzip') return true;
  if (encoding === 'identity' || encoding === '') return false;
  throw new UnsupportedMediaTypeError('unsupported-encoding', 'Content-Encoding must be gzip or absent');
}

/** One results line: the row's line in the upload and what it came to. Member identifiers, never demographics. */
function resultLine(r: JobResult): string {
  return JSON.stringify({
    line: r.line,
    outcome: r.outcome,
    ...(r.memberId ? { memberId: r.memberId } : {}),
    ...(r.band ? { band: r.band } : {}),
    ...(r.probability !== undefined ? { probability: Number(r.probability.toPrecision(6)) } : {}),
    ...(r.reviewCaseId ? { reviewCase: r.reviewCaseId } : {}),
    ...(r.outcome === 'rejected' ? { error: r.reason } : r.reason ? { reason: r.reason } : {}),
  });
}

export function rosterRouter(deps: AppDeps): Router {
  const router = Router();
  const authenticated = authenticateAndThrottle(deps.verifyAccessToken, deps.redis, deps.config.limits, deps.authFailures);
  const allowed = requireAction(deps.policy, 'reconcile-roster', { type: 'RosterService', id: 'rosters' });
  const selfUrl = (id: string) => `${deps.config.publicBaseUrl}/rosters/${id}`;

  async function ownJob(req: Request, res: Response) {
    const job = await findOwnJob(deps.db, req.params.id as string, 'roster-reconcile', currentActor(res).clientId);
    if (!job) throw new NotFoundError('not-found', 'no such roster job for this client');
    requestAudit(res).details.batchJob = job.id;
    return job;
  }

  router.post('/', auditAs('roster-reconcile-upload'), authenticated, allowed, async (req, res) => {
    const format = uploadFormat(req);
    const upload = await spoolUpload(req, { gzip: uploadIsGzip(req), maxBytes: deps.config.batch.rosterMaxBytes });
    try {
      if (upload.bytes === 0) throw new BusinessRuleError('roster-empty', 'the roster has no rows');
      const { job, created } = await startJob(
        deps,
        { kind: 'roster-reconcile', owner: jobOwner(currentActor(res)), contentHash: `${format}:${upload.contentHash}`, options: { format } },
        () => reconcileRows(upload.file, format, deps.config.memberIdentifierSystem),
      );
      Object.assign(requestAudit(res).details, { batchJob: job.id, rows: job.totalRows, newJob: created });
      const status = created ? 202 : 200;
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: status, reasonCode: created ? 'accepted' : 'same-upload' });
      res.status(status).set('Location', selfUrl(job.id)).json(jobStatus(job, selfUrl(job.id)));
    } finally {
      await upload.cleanup();
    }
  });

  router.get('/:id', auditAs('roster-reconcile-status'), authenticated, allowed, async (req, res) => {
    const job = await ownJob(req, res);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    const work = jobWork(job, deps.config.batch.retryAfterSeconds, 'rows');
    if (work.state === 'in-progress') res.set('Retry-After', String(work.retryAfterSeconds));
    res.status(200).json(jobStatus(job, selfUrl(job.id)));
  });

  router.get('/:id/results', auditAs('roster-reconcile-results'), authenticated, allowed, async (req, res) => {
    const job = await ownJob(req, res);
    requestAudit(res).details.rowsDone = job.rowsDone;
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.status(200).type('application/x-ndjson').set('X-Job-State', job.state);
    // Keyset pages, written as they are read: memory stays flat whatever the roster's size.
    let after = -1;
    for (;;) {
      const page = await jobResults(deps.db, job.id, after, RESULT_PAGE);
      if (page.length === 0) break;
      const ok = res.write(page.map(resultLine).join('\n') + '\n');
      after = page[page.length - 1]!.seq;
      if (!ok) await new Promise<void>((resolve) => res.once('drain', resolve));
      if (res.destroyed) return;
    }
    res.end();
  });

  router.delete('/:id', auditAs('roster-reconcile-cancel'), authenticated, allowed, async (req, res) => {
    const job = await ownJob(req, res);
    if (!(await cancelJob(deps.db, job.id))) throw new ConflictError('job-finished', `the job has already ${job.state === 'completed' ? 'completed' : 'ended'}`);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 202, reasonCode: 'cancelled' });
    res.status(202).json(jobStatus({ ...job, state: 'cancelled' }, selfUrl(job.id)));
  });

  router.all('/', auditAs('roster-reconcile-upload'), methodNotAllowed('POST'));
  router.all('/:id', auditAs('roster-reconcile-status'), methodNotAllowed('GET', 'DELETE'));
  router.all('/:id/results', auditAs('roster-reconcile-results'), methodNotAllowed('GET'));

  return router;
}

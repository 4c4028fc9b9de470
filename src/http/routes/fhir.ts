import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Resource } from 'fhir/r4.js';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { parseSystemValue } from '../../shared/system-value.js';
import { InvalidRequestError, NotFoundError, ProcessingFailedError, TooManyRequestsError, UnsupportedMediaTypeError } from '../../errors.js';
import { bulkContentHash, bulkResultGroups, bulkResultParameters, parseBulkMemberMatchRequest, RESULT_GROUPS } from '../../batch/bulk-member-match.js';
import { bulkRowsWithResults, progressHeader, startJob } from '../../batch/job-service.js';
import { cancelJob, deleteJob, findOwnJob, jobOwner } from '../../batch/jobs.js';
import { capabilityStatement } from '../../fhir/capability-statement.js';
import { minimalPatient, searchsetBundle } from '../../fhir/resources.js';
import { liveLinkedMembers } from '../../links/member-links.js';
import { memberMatchOperation, memberMatchStatusOperation } from '../fhir/operations/member-match.js';
import { sendResult } from '../fhir/operation.js';
import { authorityOf } from '../../pipeline/authority.js';
import { tenantLockout } from '../../pipeline/plan.js';
import { findMemberSummary, findMemberSummaryByMemberId } from '../../members/member-index.js';
import { formatOrganization, type Actor } from '../../identity/actor.js';
import type { BusinessAction, ResourceRef } from '../../policy/cedar-policy.js';
import { smartConfiguration } from './oauth.js';
import type { AppDeps } from '../deps.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit, requireAction } from '../request-context.js';

export const FHIR_JSON_TYPES = ['application/fhir+json', 'application/json'];
const RESPOND_ASYNC = /(^|[,;\s])respond-async($|[,;\s])/;
const NDJSON = 'application/fhir+ndjson';

/** STU 2.1 answers with a Parameters; `_outputFormat=application/fhir+ndjson` asks for the STU 2.2 manifest. */
function bulkOutputFormat(req: Request): string {
  const asked = req.query._outputFormat;
  if (asked === undefined) return 'application/fhir+json';
  if (asked === NDJSON || asked === 'application/ndjson' || asked === 'ndjson') return NDJSON;
  if (asked === 'application/fhir+json') return asked;
  throw new InvalidRequestError('output-format-unsupported', '_outputFormat must be application/fhir+json (STU 2.1) or application/fhir+ndjson (STU 2.2)');
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function fhirRouter(deps: AppDeps): Router {
  const router = Router();
  const authenticated = authenticateAndThrottle(deps.verifyAccessToken, deps.redis, deps.config.limits);
  const matchService = { type: 'MatchService', id: 'member-match' } as const;
  // A partner's members are the ones its organisation holds links to: the tenant of what it reads.
  const memberDirectory = (actor: Actor): ResourceRef => ({
    type: 'MemberDirectory',
    id: formatOrganization(actor.organization),
    attrs: { tenant: formatOrganization(actor.organization) },
  });
  const allow = (action: BusinessAction) =>
    requireAction(deps.policy, action, action === 'submit-member-match' || action === 'submit-bulk-member-match' ? matchService : memberDirectory);
  const fhirJsonBody = [
    requireFhirJson,
    express.json({ type: FHIR_JSON_TYPES, limit: deps.config.maxBodyBytes, strict: true }),
  ];

  /** Audits the success, then answers: a response never leaves without its audit event. */
  async function send(res: Response, status: number, resource: Resource): Promise<void> {
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: status, reasonCode: 'ok' });
    res.status(status).type('application/fhir+json').send(JSON.stringify(resource));
  }

  router.get('/metadata', auditAs('capabilities'), async (_req, res) => {
    await send(res, 200, capabilityStatement(deps.config, deps.version));
  });

  // SMART discovery relative to the FHIR base, where SMART clients look for it.
  router.get('/.well-known/smart-configuration', auditAs('smart-configuration'), async (_req, res) => {
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.json(smartConfiguration(deps));
  });

  router.post(
    '/Patient/$member-match',
    auditAs('member-match'),
    authenticated,
    allow('submit-member-match'),
    ...fhirJsonBody,
    async (req, res) => {
      const respondAsync = RESPOND_ASYNC.test(String(req.headers.prefer ?? ''));
      const result = await memberMatchOperation(deps, { actor: currentActor(res), audit: requestAudit(res), respondAsync }, req.body);
      await sendResult(deps.db, requestAudit(res), res, result);
    },
  );

  // PDex $bulk-member-match: validated now, decided by the batch workers; see src/batch/bulk-member-match.ts.
  router.post(
    '/Group/$bulk-member-match',
    auditAs('bulk-member-match'),
    authenticated,
    allow('submit-bulk-member-match'),
    requireFhirJson,
    express.json({ type: FHIR_JSON_TYPES, limit: deps.config.batch.bulkMaxBodyBytes, strict: true }),
    async (req, res) => {
      if (!RESPOND_ASYNC.test(String(req.headers.prefer ?? ''))) {
        throw new InvalidRequestError('respond-async-required', '$bulk-member-match is asynchronous: send Prefer: respond-async');
      }
      const outputFormat = bulkOutputFormat(req);
      const members = parseBulkMemberMatchRequest(req.body, deps.config.batch.bulkMaxMembers);
      const actor = currentActor(res);
      // A locked tenant's bulk request is refused whole, before anything is stored; a lockout that trips while
      // a job runs answers its remaining members as not matched (src/pipeline/plan.ts).
      const lockedFor = await tenantLockout(deps.redis, authorityOf(actor));
      if (lockedFor > 0) throw new TooManyRequestsError('matching-locked', "this client's member matching is suspended after suspicious activity", lockedFor);
      const { job, created } = await startJob(
        deps,
        { kind: 'bulk-member-match', owner: jobOwner(actor), contentHash: bulkContentHash(req.body, outputFormat), options: { outputFormat } },
        () => members.map((parameters, i) => ({ line: i + 1, input: { parameters } as unknown as Record<string, unknown> })),
      );
      Object.assign(requestAudit(res).details, { batchJob: job.id, members: members.length, newJob: created });
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 202, reasonCode: created ? 'accepted' : 'same-request' });
      res.status(202).set('Content-Location', `${deps.config.fhirBaseUrl}/bulk-member-match-status/${job.id}`).end();
    },
  );

  /** The caller's own bulk job, or 404: another client's job does not exist for it. */
  async function ownBulkJob(req: Request, res: Response) {
    const job = await findOwnJob(deps.db, req.params.jobId as string, 'bulk-member-match', currentActor(res).clientId);
    if (!job || job.state === 'cancelled') throw new NotFoundError('not-found', 'no such bulk match request for this client');
    requestAudit(res).details.batchJob = job.id;
    return job;
  }

  router.get('/bulk-member-match-status/:jobId', auditAs('bulk-member-match-status'), authenticated, allow('submit-bulk-member-match'), async (req, res) => {
    const job = await ownBulkJob(req, res);
    if (job.state === 'failed') throw new ProcessingFailedError('job-failed', 'the bulk match failed on our side; submit it again');
    if (job.state !== 'completed') {
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 202, reasonCode: 'in-progress' });
      res.status(202).set('X-Progress', progressHeader(job, 'members')).set('Retry-After', String(deps.config.batch.retryAfterSeconds)).end();
      return;
    }
    const statusUrl = `${deps.config.fhirBaseUrl}/bulk-member-match-status/${job.id}`;
    if (job.options.outputFormat === NDJSON) {
      // STU 2.2: a bulk-data manifest with one Group per NDJSON file.
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
      res.status(200).json({
        transactionTime: job.finishedAt?.toISOString(),
        request: `${deps.config.fhirBaseUrl}/Group/$bulk-member-match`,
        requiresAccessToken: true,
        output: RESULT_GROUPS.map((g) => ({ type: 'Group', url: `${statusUrl}/${g.parameter}.ndjson`, extension: { parameter: g.parameter } })),
        error: [],
      });
      return;
    }
    const groups = bulkResultGroups(deps.config, job, await bulkRowsWithResults(deps.db, job.id));
    Object.assign(requestAudit(res).details, job.counts);
    await send(res, 200, bulkResultParameters(groups));
  });

  router.get('/bulk-member-match-status/:jobId/:file', auditAs('bulk-member-match-output'), authenticated, allow('submit-bulk-member-match'), async (req, res) => {
    const job = await ownBulkJob(req, res);
    const group = RESULT_GROUPS.find((g) => `${g.parameter}.ndjson` === req.params.file);
    if (job.state !== 'completed' || !group) throw new NotFoundError('not-found', 'no such output file');
    const groups = bulkResultGroups(deps.config, job, await bulkRowsWithResults(deps.db, job.id));
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.status(200).type('application/fhir+ndjson').send(`${JSON.stringify(groups[group.parameter])}\n`);
  });

  router.delete('/bulk-member-match-status/:jobId', auditAs('bulk-member-match-cancel'), authenticated, allow('submit-bulk-member-match'), async (req, res) => {
    const job = await ownBulkJob(req, res);
    // Running: cancelled (chunks already committed keep their links and cases, as single matches would).
    // Finished: its results are deleted. Either way the status URL then answers 404.
    if (!(await cancelJob(deps.db, job.id))) await deleteJob(deps.db, job.id);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 202, reasonCode: 'cancelled' });
    res.status(202).end();
  });

  router.get('/member-match-status/:caseId', auditAs('member-match-status'), authenticated, allow('submit-member-match'), async (req, res) => {
    const result = await memberMatchStatusOperation(deps, { actor: currentActor(res), audit: requestAudit(res) }, req.params.caseId as string);
    await sendResult(deps.db, requestAudit(res), res, result);
  });

  // Search answers only what the partner already has a live, consented link to: an empty Bundle otherwise,
  // exactly as for a member who does not exist, so search is no oracle for membership.
  router.get('/Patient', auditAs('patient-search'), authenticated, allow('read-matched-member'), async (req, res) => {
    const identifier = singleQueryParam(req, 'identifier');
    const token = identifier ? parseSystemValue(identifier) ?? { system: undefined, value: identifier } : undefined;
    const unsupported = Object.keys(req.query).filter((k) => k !== 'identifier' && !k.startsWith('_'));
    if (!token || unsupported.length > 0) {
      throw new InvalidRequestError('search-unsupported', 'Patient search supports only identifier=[system|]value', {
        expression: 'Patient.identifier',
      });
    }
    const patients = [];
    if (token.system === undefined || token.system === deps.config.memberIdentifierSystem) {
      const member = await findMemberSummaryByMemberId(deps.db, token.value);
      const actor = currentActor(res);
      if (member && (await liveLinkedMembers(deps.db, actor.organization, [member.id], new Date())).has(member.id)) {
        patients.push(minimalPatient(deps.config.memberIdentifierSystem, member));
        requestAudit(res).memberRef = member.id;
      }
    }
    requestAudit(res).details.total = patients.length;
    await send(res, 200, searchsetBundle(`${deps.config.fhirBaseUrl}/Patient`, deps.config.fhirBaseUrl, patients));
  });

  router.get('/Patient/:id', auditAs('patient-read'), authenticated, allow('read-matched-member'), async (req, res) => {
    const id = req.params.id as string;
    const member = UUID.test(id) ? await findMemberSummary(deps.db, id) : undefined;
    const actor = currentActor(res);
    if (!member || !(await liveLinkedMembers(deps.db, actor.organization, [member.id], new Date())).has(member.id)) {
      throw new NotFoundError('not-found', 'no such Patient is available to this client');
    }
    requestAudit(res).memberRef = member.id;
    await send(res, 200, minimalPatient(deps.config.memberIdentifierSystem, member));
  });

  router.use(auditAs('unknown'), () => {
    throw new NotFoundError('unknown-route', 'no such FHIR endpoint on this server');
  });
  return router;
}

const requireFhirJson: RequestHandler = (req, _res, next) => {
  if (!req.is(FHIR_JSON_TYPES)) {
    throw new UnsupportedMediaTypeError('unsupported-media-type', 'send application/fhir+json or application/json');
  }
  next();
};

function singleQueryParam(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new InvalidRequestError('search-parameter-repeated', `${name} may be given once`, { expression: `Patient.${name}` });
  }
  return value;
}

import { Router, type Request, type RequestHandler } from 'express';
import { jsonBody } from '../body.js';
import { NotFoundError, UnsupportedMediaTypeError } from '../../errors.js';
import { methodNotAllowed } from '../errors.js';
import { capabilityStatement } from '../../fhir/capability-statement.js';
import { formatOrganization, type Actor } from '../../identity/actor.js';
import type { ResourceRef } from '../../policy/cedar-policy.js';
import type { AppDeps } from '../deps.js';
import { ok, sendResult, type OperationContext, type OperationResult } from '../fhir/operation.js';
import { bulkMemberMatchCancel, bulkMemberMatchKickOff, bulkMemberMatchOutput, bulkMemberMatchStatus } from '../fhir/operations/bulk-member-match.js';
import { memberMatchOperation, memberMatchStatusOperation } from '../fhir/operations/member-match.js';
import { patientRead, patientSearch } from '../fhir/operations/patient.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit, requireAction } from '../request-context.js';
import { smartConfiguration } from './oauth.js';

export const FHIR_JSON_TYPES = ['application/fhir+json', 'application/json'];
const RESPOND_ASYNC = /(^|[,;\s])respond-async($|[,;\s])/;
const respondAsync = (req: Request) => RESPOND_ASYNC.test(String(req.headers.prefer ?? ''));

/** The match operations act on the match service; reads act on the caller's own member directory. */
const MATCH_SERVICE: ResourceRef = { type: 'MatchService', id: 'member-match' };
/** A partner's members are the ones its organisation holds links to: the tenant of what it reads. */
const memberDirectory = (actor: Actor): ResourceRef => ({
  type: 'MemberDirectory',
  id: formatOrganization(actor.organization),
  attrs: { tenant: formatOrganization(actor.organization) },
});

/**
 * The FHIR route table: one line per operation — name it for the audit trail, authenticate, authorize, parse
 * the body, then run the operation (src/http/fhir/operations), whose returned answer `sendResult` audits and
 * sends. Refusals are thrown and become OperationOutcomes in src/http/errors.ts.
 */
export function fhirRouter(deps: AppDeps): Router {
  const router = Router();
  const authenticated = authenticateAndThrottle(deps.verifyAccessToken, deps.redis, deps.config.limits, deps.authFailures);
  const matching = requireAction(deps.policy, 'submit-member-match', MATCH_SERVICE);
  const bulkMatching = requireAction(deps.policy, 'submit-bulk-member-match', MATCH_SERVICE);
  const reading = requireAction(deps.policy, 'read-matched-member', memberDirectory);
  const fhirJson = (limit: number) => [requireFhirJson, ...jsonBody({ type: FHIR_JSON_TYPES, limit })];
  const run =
    (operation: (req: Request, context: OperationContext) => Promise<OperationResult>): RequestHandler =>
    async (req, res) => {
      const audit = requestAudit(res);
      await sendResult(deps.db, audit, res, await operation(req, { actor: currentActor(res), audit }));
    };
  const runPublic = (answer: () => OperationResult): RequestHandler => async (_req, res) => sendResult(deps.db, requestAudit(res), res, answer());

  router.get('/metadata', auditAs('capabilities'), runPublic(() => ok(capabilityStatement(deps.config, deps.version))));
  // SMART discovery relative to the FHIR base, where SMART clients look for it.
  router.get('/.well-known/smart-configuration', auditAs('smart-configuration'), runPublic(() => ({ ...ok(smartConfiguration(deps)), contentType: 'application/json' })));

  router.post('/Patient/$member-match', auditAs('member-match'), authenticated, matching, ...fhirJson(deps.config.maxBodyBytes),
    run((req, context) => memberMatchOperation(deps, { ...context, respondAsync: respondAsync(req) }, req.body)));
  // Before /Patient/:id, which would otherwise read "$member-match" as a Patient id and answer 404.
  router.all('/Patient/$member-match', auditAs('member-match'), methodNotAllowed('POST'));
  router.get('/member-match-status/:caseId', auditAs('member-match-status'), authenticated, matching,
    run((req, context) => memberMatchStatusOperation(deps, context, req.params.caseId as string)));

  router.post('/Group/$bulk-member-match', auditAs('bulk-member-match'), authenticated, bulkMatching, ...fhirJson(deps.config.batch.bulkMaxBodyBytes),
    run((req, context) => bulkMemberMatchKickOff(deps, context, { body: req.body, respondAsync: respondAsync(req), outputFormat: req.query._outputFormat })));
  router.all('/Group/$bulk-member-match', auditAs('bulk-member-match'), methodNotAllowed('POST'));
  router.get('/bulk-member-match-status/:jobId', auditAs('bulk-member-match-status'), authenticated, bulkMatching,
    run((req, context) => bulkMemberMatchStatus(deps, context, req.params.jobId as string)));
  router.get('/bulk-member-match-status/:jobId/:file', auditAs('bulk-member-match-output'), authenticated, bulkMatching,
    run((req, context) => bulkMemberMatchOutput(deps, context, req.params.jobId as string, req.params.file as string)));
  router.delete('/bulk-member-match-status/:jobId', auditAs('bulk-member-match-cancel'), authenticated, bulkMatching,
    run((req, context) => bulkMemberMatchCancel(deps, context, req.params.jobId as string)));

  router.get('/Patient', auditAs('patient-search'), authenticated, reading, run((req, context) => patientSearch(deps, context, req.query, req.originalUrl)));
  router.get('/Patient/:id', auditAs('patient-read'), authenticated, reading, run((req, context) => patientRead(deps, context, req.params.id as string)));

  // A known path asked with a method it does not answer: 405 with Allow, not 404 (HEAD follows GET).
  router.all('/metadata', auditAs('capabilities'), methodNotAllowed('GET'));
  router.all('/.well-known/smart-configuration', auditAs('smart-configuration'), methodNotAllowed('GET'));
  router.all('/member-match-status/:caseId', auditAs('member-match-status'), methodNotAllowed('GET'));
  router.all('/bulk-member-match-status/:jobId', auditAs('bulk-member-match-status'), methodNotAllowed('GET', 'DELETE'));
  router.all('/bulk-member-match-status/:jobId/:file', auditAs('bulk-member-match-output'), methodNotAllowed('GET'));
  router.all('/Patient', auditAs('patient-search'), methodNotAllowed('GET'));
  router.all('/Patient/:id', auditAs('patient-read'), methodNotAllowed('GET'));

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

import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Resource } from 'fhir/r4.js';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { parseSystemValue } from '../../config.js';
import { InvalidRequestError, NotFoundError, ReviewPendingError, UnsupportedMediaTypeError } from '../../errors.js';
import { capabilityStatement } from '../../fhir/capability-statement.js';
import { minimalPatient, searchsetBundle } from '../../fhir/resources.js';
import { liveLinkedMembers } from '../../links/member-links.js';
import { memberMatch, memberMatchStatus } from '../../member-match/member-match.js';
import { findMemberSummary, findMemberSummaryByMemberId } from '../../members/member-index.js';
import { authorize } from '../../policy/authorize.js';
import { formatOrganization } from '../../identity/actor.js';
import type { BusinessAction, ResourceRef } from '../../policy/cedar-policy.js';
import { smartConfiguration } from './oauth.js';
import type { AppDeps } from '../deps.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit } from '../request-context.js';

export const FHIR_JSON_TYPES = ['application/fhir+json', 'application/json'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function fhirRouter(deps: AppDeps): Router {
  const router = Router();
  const authenticated = authenticateAndThrottle(deps.verifyAccessToken, deps.redis, deps.config.limits);
  const allow = (action: BusinessAction): RequestHandler => (_req, res, next) => {
    const actor = currentActor(res);
    // A partner's members are the ones its organisation holds links to: the tenant of what it reads.
    const resource: ResourceRef =
      action === 'submit-member-match'
        ? { type: 'MatchService', id: 'member-match' }
        : { type: 'MemberDirectory', id: formatOrganization(actor.organization), attrs: { tenant: formatOrganization(actor.organization) } };
    authorize(deps.policy, requestAudit(res), actor, action, resource);
    next();
  };
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
      // FHIR asynchronous pattern: with `Prefer: respond-async`, a match that goes to review answers 202 and a
      // status URL instead of 422.
      const respondAsync = /(^|[,;\s])respond-async($|[,;\s])/.test(String(req.headers.prefer ?? ''));
      try {
        const result = await memberMatch(deps, currentActor(res), req.body, requestAudit(res), { respondAsync });
        await send(res, 200, result);
      } catch (error) {
        if (!(respondAsync && error instanceof ReviewPendingError)) throw error;
        await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 202, reasonCode: 'review-pending' });
        res.status(202).set('Content-Location', `${deps.config.fhirBaseUrl}/member-match-status/${error.caseId}`).set('Retry-After', String(error.retryAfterSeconds)).end();
      }
    },
  );

  router.get('/member-match-status/:caseId', auditAs('member-match-status'), authenticated, allow('submit-member-match'), async (req, res) => {
    const result = await memberMatchStatus(deps, currentActor(res), req.params.caseId as string, requestAudit(res));
    if (!result) {
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 202, reasonCode: 'review-pending' });
      res.status(202).set('Retry-After', String(deps.config.review.retryAfterSeconds)).end();
      return;
    }
    await send(res, 200, result);
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

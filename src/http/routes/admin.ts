import { Router } from 'express';
import { jsonBody } from '../body.js';
import { z } from 'zod';
import { verifyAuditChain } from '../../audit/audit-trail.js';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { clearOptOut, listOptOuts, recordOptOut } from '../../consent/opt-out-registry.js';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import { findMemberSummaryByMemberId } from '../../members/member-index.js';
import type { BusinessAction, ResourceRef } from '../../policy/cedar-policy.js';
import type { AppDeps } from '../deps.js';
import { issueDashboardSession, sessionCookie } from './dashboard.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit, requireAction } from '../request-context.js';

/**
 * Staff endpoints, for review staff authenticated by the organisation's OpenID Connect provider (or the
 * development IdP): the consent registry (admins) and audit-chain verification (auditors, admins). Every
 * request is authorized by the Cedar policy set and audited, allow or deny.
 */
const CONSENT_REGISTRY: ResourceRef = { type: 'ConsentRegistry', id: 'consent-registry' };
const AUDIT_TRAIL: ResourceRef = { type: 'AuditTrail', id: 'audit-trail' };
const OPERATIONS: ResourceRef = { type: 'Operations', id: 'queues' };
const optOutBody = z.object({ status: z.enum(['opted-out', 'revoked']) }).strict();

export function adminRouter(deps: AppDeps): Router {
  const router = Router();
  const authenticated = authenticateAndThrottle((token: string) => deps.verifyHumanToken.verify(token), deps.redis, deps.config.limits, deps.authFailures);
  const allow = (action: BusinessAction, resource: ResourceRef) => requireAction(deps.policy, action, resource);
  const json = jsonBody({ limit: '4kb' });

  async function memberUuid(memberId: string): Promise<string> {
    const member = await findMemberSummaryByMemberId(deps.db, memberId);
    if (!member) throw new NotFoundError('member-not-found', 'no member with that member id');
    return member.id;
  }

  router.put('/consent-registry/:memberId', auditAs('consent-registry'), authenticated, allow('administer', CONSENT_REGISTRY), ...json, async (req, res) => {
    const parsed = optOutBody.safeParse(req.body);
    if (!parsed.success) throw new InvalidRequestError('body-invalid', 'send {"status": "opted-out" | "revoked"}');
    const uuid = await memberUuid(req.params.memberId as string);
    const audit = requestAudit(res);
    audit.memberRef = uuid;
    // The change and its audit event commit together.
    await deps.db.transaction().execute(async (trx) => {
      await recordOptOut(trx, uuid, parsed.data.status, `admin:${currentActor(res).subject}`);
      await writeRequestAudit(trx, audit, { outcome: 'success', httpStatus: 200, reasonCode: parsed.data.status });
    });
    res.json({ status: parsed.data.status });
  });

  router.delete('/consent-registry/:memberId', auditAs('consent-registry'), authenticated, allow('administer', CONSENT_REGISTRY), async (req, res) => {
    const uuid = await memberUuid(req.params.memberId as string);
    const audit = requestAudit(res);
    audit.memberRef = uuid;
    let removed = false;
    await deps.db.transaction().execute(async (trx) => {
      removed = await clearOptOut(trx, uuid);
      await writeRequestAudit(trx, audit, { outcome: 'success', httpStatus: 200, reasonCode: removed ? 'opted-in' : 'unchanged' });
    });
    res.json({ status: removed ? 'opted-in' : 'unchanged' });
  });

  router.get('/consent-registry', auditAs('consent-registry-list'), authenticated, allow('administer', CONSENT_REGISTRY), async (_req, res) => {
    const rows = await listOptOuts(deps.db);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.json(rows.map((r) => ({ memberId: r.member_id, status: r.status, source: r.source, recordedAt: r.recorded_at })));
  });

  // A short-lived session cookie for the queue dashboard, which a browser cannot send our bearer token to.
  router.post('/session', auditAs('staff-session'), authenticated, allow('administer', OPERATIONS), async (_req, res) => {
    const token = await issueDashboardSession(deps, currentActor(res));
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 204, reasonCode: 'session-issued' });
    res.set('Set-Cookie', sessionCookie(deps, token)).status(204).end();
  });

  router.get('/audit/verify', auditAs('audit-verify'), authenticated, allow('read-audit', AUDIT_TRAIL), async (_req, res) => {
    const result = await verifyAuditChain(deps.db);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: result.ok ? 'chain-intact' : 'chain-broken' });
    res.json(result);
  });

  router.use(auditAs('unknown'), () => {
    throw new NotFoundError('unknown-route', 'no such admin endpoint');
  });
  return router;
}

import { Router } from 'express';
import { jsonBody } from '../body.js';
import { methodNotAllowed } from '../errors.js';
import { z } from 'zod';
import { verifyAuditChain } from '../../audit/audit-trail.js';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { clearOptOut, listOptOuts, recordOptOut } from '../../consent/opt-out-registry.js';
import { ConflictError, InvalidRequestError, NotFoundError } from '../../errors.js';
import { findLink, listLinks, revokeLink } from '../../links/member-links.js';
import { findMemberSummaryByMemberId } from '../../members/member-index.js';
import { parseSystemValue } from '../../shared/system-value.js';
import type { BusinessAction, ResourceRef } from '../../policy/cedar-policy.js';
import type { AppDeps } from '../deps.js';
import { issueDashboardSession, sessionCookie } from './dashboard.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit, requireAction } from '../request-context.js';

/**
 * Staff endpoints, for review staff authenticated by the organisation's OpenID Connect provider (or the
 * development IdP): the consent registry (admins), partners' member links (staff list them, supervisors revoke)
 * and audit-chain verification (auditors, admins). Every
 * request is authorized by the Cedar policy set and audited, allow or deny.
 */
const CONSENT_REGISTRY: ResourceRef = { type: 'ConsentRegistry', id: 'consent-registry' };
const AUDIT_TRAIL: ResourceRef = { type: 'AuditTrail', id: 'audit-trail' };
const OPERATIONS: ResourceRef = { type: 'Operations', id: 'queues' };
const MEMBER_LINKS: ResourceRef = { type: 'MemberLinks', id: 'member-links' };
const optOutBody = z.object({ status: z.enum(['opted-out', 'revoked']) }).strict();
const LINK_STATUSES = ['active', 'revoked', 'member-opted-out', 'consent-expired', 'consent-not-yet-valid'] as const;
const linkListQuery = z
  .object({
    partner: z.string().max(256).optional(),
    client: z.string().max(128).optional(),
    member: z.string().max(128).optional(),
    status: z.enum(LINK_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .strict();
const revokeBody = z.object({ reason: z.string().trim().min(1).max(500) }).strict();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

  // Link management: a partner's member links and the consents they stand on; a supervisor revokes one.
  router.get('/links', auditAs('links-list'), authenticated, allow('read-member-links', MEMBER_LINKS), async (req, res) => {
    const query = linkListQuery.safeParse(req.query);
    if (!query.success) {
      throw new InvalidRequestError('query-invalid', `filters: partner (system|value), client, member, status (${LINK_STATUSES.join(', ')}), limit (1–500), offset`);
    }
    const partner = query.data.partner === undefined ? undefined : parseSystemValue(query.data.partner);
    if (query.data.partner !== undefined && !partner) throw new InvalidRequestError('query-invalid', 'partner is the organisation identifier as system|value');
    const links = await listLinks(deps.db, { ...query.data, partner, partnerClientId: query.data.client, memberId: query.data.member });
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.json(links);
  });

  router.get('/links/:linkId', auditAs('links-view'), authenticated, allow('read-member-links', MEMBER_LINKS), async (req, res) => {
    const link = UUID.test(req.params.linkId as string) ? await findLink(deps.db, req.params.linkId as string) : undefined;
    if (!link) throw new NotFoundError('link-not-found', 'no such link');
    const audit = requestAudit(res);
    audit.memberRef = link.memberRef;
    audit.details.link = link.linkId;
    await writeRequestAudit(deps.db, audit, { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.json(link);
  });

  router.post('/links/:linkId/revoke', auditAs('links-revoke'), authenticated, allow('revoke-member-link', MEMBER_LINKS), ...json, async (req, res) => {
    const body = revokeBody.safeParse(req.body);
    if (!body.success) throw new InvalidRequestError('body-invalid', 'send {"reason": text}');
    const linkId = req.params.linkId as string;
    if (!UUID.test(linkId)) throw new NotFoundError('link-not-found', 'no such link');
    const audit = requestAudit(res);
    audit.details.link = linkId;
    // The revocation and its audit event commit together: no revoked link without its record, nor the reverse.
    const outcome = await deps.db.transaction().execute(async (trx) => {
      const revoked = await revokeLink(trx, linkId, currentActor(res).subject, body.data.reason);
      if (revoked.ok) {
        audit.memberRef = revoked.link.memberRef;
        audit.details.partnerClientId = revoked.link.partnerClientId;
        await writeRequestAudit(trx, audit, { outcome: 'success', httpStatus: 200, reasonCode: 'link-revoked' });
      }
      return revoked;
    });
    if (!outcome.ok) {
      if (outcome.why === 'not-found') throw new NotFoundError('link-not-found', 'no such link');
      throw new ConflictError('link-already-revoked', 'the link is already revoked');
    }
    res.json(outcome.link);
  });

  router.get('/audit/verify', auditAs('audit-verify'), authenticated, allow('read-audit', AUDIT_TRAIL), async (_req, res) => {
    const result = await verifyAuditChain(deps.db);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: result.ok ? 'chain-intact' : 'chain-broken' });
    res.json(result);
  });

  router.all('/consent-registry/:memberId', auditAs('consent-registry'), methodNotAllowed('PUT', 'DELETE'));
  router.all('/consent-registry', auditAs('consent-registry-list'), methodNotAllowed('GET'));
  router.all('/session', auditAs('staff-session'), methodNotAllowed('POST'));
  router.all('/links', auditAs('links-list'), methodNotAllowed('GET'));
  router.all('/links/:linkId', auditAs('links-view'), methodNotAllowed('GET'));
  router.all('/links/:linkId/revoke', auditAs('links-revoke'), methodNotAllowed('POST'));
  router.all('/audit/verify', auditAs('audit-verify'), methodNotAllowed('GET'));

  router.use(auditAs('unknown'), () => {
    throw new NotFoundError('unknown-route', 'no such admin endpoint');
  });
  return router;
}

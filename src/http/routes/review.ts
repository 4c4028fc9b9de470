import { Router, type Request, type Response } from 'express';
import { jsonBody } from '../body.js';
import { methodNotAllowed } from '../errors.js';
import { z } from 'zod';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { ConflictError, ForbiddenError, InvalidRequestError, NotFoundError, PreconditionFailedError, PreconditionRequiredError } from '../../errors.js';
import type { PersonFields } from '../../matching/record.js';
import { findMemberSummary } from '../../members/member-index.js';
import type { BusinessAction, ResourceRef } from '../../policy/cedar-policy.js';
import { changeLease, claimNextCase, confirmCase, decideCase, findCase, listCases, reopenCase, reviewStats, type ReviewCase } from '../../review/review-cases.js';
import type { AppDeps } from '../deps.js';
import { auditAs, authenticateAndThrottle, currentActor, requestAudit, requireAction } from '../request-context.js';

/**
 * The reviewer API (JSON, not FHIR): staff with the `reviewer` or `supervisor` role list, claim, view,
 * release and decide review cases. Claims are exclusive leases; decisions carry the case version as ETag and
 * must send it back in If-Match. Every action is an audit event with the human actor.
 */
const QUEUE: ResourceRef = { type: 'ReviewQueue', id: 'review' };

/**
 * The case version a reviewer last saw, from If-Match (the case ETag): required for every change. Absent →
 * 428 (RFC 6585: read the case first); present but not one of our ETags → 412, as a stale one would be.
 */
function expectedVersion(req: Request): number {
  const header = req.headers['if-match'];
  if (header === undefined || header.trim() === '') throw new PreconditionRequiredError('if-match-required', 'send the case ETag in If-Match');
  const ifMatch = /^(?:W\/)?"?(\d+)"?$/.exec(header.trim());
  if (!ifMatch) throw new PreconditionFailedError('if-match-unknown', 'If-Match is not an ETag of this case; reload the case');
  return Number(ifMatch[1]);
}

const staleCase = () => new PreconditionFailedError('stale-version', 'the case changed since you read it; reload it');

const listQuery = z.object({
  status: z.enum(['pending', 'claimed', 'awaiting-confirmation', 'decided']).optional(),
  reason: z.string().max(64).optional(),
  partner: z.string().max(128).optional(),
  olderThan: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).default(0),
});
const confirmBody = z.object({ agree: z.boolean(), reason: z.string().min(1).max(500) }).strict();
const leaseBody = z.object({ action: z.enum(['extend', 'release']) }).strict();
const decisionBody = z
  .object({ decision: z.enum(['match', 'no-match']), memberRef: z.string().uuid().optional(), reason: z.string().min(1).max(500) })
  .strict()
  .refine((b) => (b.decision === 'match') === !!b.memberRef, { message: 'memberRef is required for match and only for match' });

/** What a reviewer needs to compare, and no more: contact details are masked. */
function masked(fields: PersonFields) {
  const tail = (value: string | undefined, keep: number) => (value ? `${'•'.repeat(Math.max(0, value.length - keep))}${value.slice(-keep)}` : undefined);
  return {
    given: fields.given,
    middle: fields.middle,
    family: fields.family,
    suffix: fields.suffix,
    birthDate: fields.birthDate,
    sex: fields.sex,
    city: fields.city,
    state: fields.state,
    postalCode: fields.postalCode?.slice(0, 5),
    addressLine: tail(fields.addressLine, 6),
    phone: tail(fields.phone?.replace(/\D/g, ''), 4),
    email: fields.email ? `•••@${fields.email.split('@')[1] ?? ''}` : undefined,
  };
}

function summary(c: ReviewCase) {
  return {
    id: c.id,
    status: c.status,
    reason: c.reason,
    partnerClientId: c.partnerClientId,
    priority: c.priority,
    createdAt: c.createdAt,
    ageSeconds: Math.round((Date.now() - c.createdAt.getTime()) / 1000),
    slaDueAt: c.slaDueAt,
    leaseOwner: c.leaseOwner,
    leaseExpiresAt: c.leaseExpiresAt,
    decision: c.decision,
    decidedBy: c.decidedBy,
    // What a second reviewer confirms (four eyes): the proposed member and the first reviewer's reason.
    decidedMemberRef: c.decidedMemberUuid,
    decisionReason: c.decisionReason,
    highRisk: c.highRisk,
    confirmedBy: c.confirmedBy,
    version: c.version,
  };
}

export function reviewRouter(deps: AppDeps): Router {
  const router = Router();
  const authenticated = authenticateAndThrottle((token: string) => deps.verifyHumanToken.verify(token), deps.redis, deps.config.limits, deps.authFailures);
  const allow = (action: BusinessAction) => requireAction(deps.policy, action, QUEUE);
  const json = jsonBody({ limit: '8kb' });
  const reviewer = (res: Response) => currentActor(res).subject;

  async function ok(res: Response, body: unknown, reasonCode: string, status = 200) {
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: status, reasonCode });
    res.status(status).json(body);
  }

  async function caseView(c: ReviewCase) {
    const candidates = await Promise.all(
      c.candidates.map(async (candidate) => {
        const member = await findMemberSummary(deps.db, candidate.memberUuid);
        return {
          memberRef: candidate.memberUuid,
          probability: candidate.probability,
          matchWeight: candidate.matchWeight,
          cardHit: candidate.cardHit,
          explanation: candidate.explanation,
          member: member && masked({ given: member.given, middle: member.middle ?? undefined, family: member.family, suffix: member.suffix ?? undefined, birthDate: member.birthDate, sex: member.gender ?? undefined }),
        };
      }),
    );
    return { ...summary(c), modelVersion: c.modelVersion, bestProbability: c.bestProbability, request: masked(c.offered), candidates };
  }

  router.get('/cases', auditAs('review-list'), authenticated, allow('work-review-case'), async (req, res) => {
    const query = listQuery.safeParse(req.query);
    if (!query.success) throw new InvalidRequestError('query-invalid', 'status, reason, partner, olderThan (seconds), limit (1–100) and offset are the filters');
    const cases = await listCases(deps.db, { ...query.data, partnerClientId: query.data.partner, olderThanSeconds: query.data.olderThan });
    await ok(res, cases.map(summary), 'ok');
  });

  router.get('/stats', auditAs('review-stats'), authenticated, allow('work-review-case'), async (_req, res) => {
    await ok(res, await reviewStats(deps.db), 'ok');
  });

  router.post('/cases/claim', auditAs('review-claim'), authenticated, allow('work-review-case'), async (_req, res) => {
    const claimed = await claimNextCase(deps.db, reviewer(res), deps.config.review.leaseSeconds);
    if (!claimed) {
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 204, reasonCode: 'queue-empty' });
      res.status(204).end();
      return;
    }
    requestAudit(res).details.reviewCase = claimed.id;
    res.set('ETag', `"${claimed.version}"`);
    await ok(res, await caseView(claimed), 'claimed');
  });

  // Before /cases/:id, which would otherwise read "claim" as a case id.
  router.all('/cases/claim', auditAs('review-claim'), methodNotAllowed('POST'));

  router.get('/cases/:id', auditAs('review-view'), authenticated, allow('work-review-case'), async (req, res) => {
    const c = await findCase(deps.db, z.string().uuid().safeParse(req.params.id).success ? (req.params.id as string) : '00000000-0000-0000-0000-000000000000');
    if (!c) throw new NotFoundError('case-not-found', 'no such review case');
    requestAudit(res).details.reviewCase = c.id;
    res.set('ETag', `"${c.version}"`);
    await ok(res, await caseView(c), 'viewed');
  });

  router.post('/cases/:id/lease', auditAs('review-lease'), authenticated, allow('work-review-case'), ...json, async (req, res) => {
    const body = leaseBody.safeParse(req.body);
    if (!body.success) throw new InvalidRequestError('body-invalid', 'send {"action": "extend" | "release"}');
    const id = req.params.id as string;
    requestAudit(res).details.reviewCase = id;
    const changed = await changeLease(deps.db, id, reviewer(res), body.data.action === 'release' ? 'release' : deps.config.review.leaseSeconds);
    if (!changed) throw new ConflictError('lease-not-held', 'you do not hold a live lease on this case');
    res.set('ETag', `"${changed.version}"`);
    await ok(res, summary(changed), body.data.action === 'release' ? 'released' : 'lease-extended');
  });

  router.post('/cases/:id/decision', auditAs('review-decide'), authenticated, allow('decide-review-case'), ...json, async (req, res) => {
    const body = decisionBody.safeParse(req.body);
    if (!body.success) throw new InvalidRequestError('body-invalid', 'send {"decision": "match" | "no-match", "memberRef"?: uuid, "reason": text}');
    const version = expectedVersion(req);
    const id = req.params.id as string;
    const audit = requestAudit(res);
    audit.details.reviewCase = id;
    const current = await findCase(deps.db, id);
    if (!current) throw new NotFoundError('case-not-found', 'no such review case');
    if (body.data.memberRef && !current.candidates.some((c) => c.memberUuid === body.data.memberRef)) {
      throw new InvalidRequestError('member-not-a-candidate', 'memberRef must be one of the case candidates');
    }
    const outcome = await decideCase(deps.db, id, reviewer(res), version, {
      decision: body.data.decision,
      memberUuid: body.data.memberRef,
      reason: body.data.reason,
    });
    if (!outcome.ok) {
      if (outcome.why === 'stale') throw staleCase();
      if (outcome.why === 'not-found') throw new NotFoundError('case-not-found', 'no such review case');
      if (outcome.why === 'decided') throw new ConflictError('already-decided', 'the case is already decided');
      throw new ForbiddenError('not-claimed-by-you', 'claim the case before deciding it');
    }
    audit.memberRef = outcome.review.decidedMemberUuid ?? undefined;
    audit.details.reviewDecision = outcome.review.decision;
    res.set('ETag', `"${outcome.review.version}"`);
    await ok(res, summary(outcome.review), `decided-${outcome.review.decision}`);
  });

  // Four eyes: a different reviewer confirms (or rejects) a high-risk case's proposed decision.
  router.post('/cases/:id/confirm', auditAs('review-confirm'), authenticated, allow('decide-review-case'), ...json, async (req, res) => {
    const body = confirmBody.safeParse(req.body);
    if (!body.success) throw new InvalidRequestError('body-invalid', 'send {"agree": true | false, "reason": text}');
    const version = expectedVersion(req);
    const id = req.params.id as string;
    const audit = requestAudit(res);
    audit.details.reviewCase = id;
    const outcome = await confirmCase(deps.db, id, reviewer(res), version, body.data.agree);
    if (!outcome.ok) {
      if (outcome.why === 'stale') throw staleCase();
      if (outcome.why === 'not-found') throw new NotFoundError('case-not-found', 'no such review case');
      if (outcome.why === 'same-reviewer') throw new ForbiddenError('four-eyes', 'a different reviewer must confirm this decision');
      throw new ConflictError('not-awaiting-confirmation', 'the case has no decision awaiting confirmation');
    }
    audit.memberRef = outcome.review.decidedMemberUuid ?? undefined;
    res.set('ETag', `"${outcome.review.version}"`);
    await ok(res, summary(outcome.review), body.data.agree ? 'confirmed' : 'confirmation-rejected');
  });

  // Changing a final decision takes another manual decision: a supervisor reopens the case (audited).
  router.post('/cases/:id/reopen', auditAs('review-reopen'), authenticated, allow('reopen-review-case'), ...json, async (req, res) => {
    const body = z.object({ reason: z.string().min(1).max(500) }).strict().safeParse(req.body);
    if (!body.success) throw new InvalidRequestError('body-invalid', 'send {"reason": text}');
    const version = expectedVersion(req);
    const id = req.params.id as string;
    requestAudit(res).details.reviewCase = id;
    const reopened = await reopenCase(deps.db, id, version);
    if (reopened === 'stale') throw staleCase();
    if (!reopened) throw new ConflictError('not-decided', 'only a decided case can be reopened');
    res.set('ETag', `"${reopened.version}"`);
    await ok(res, summary(reopened), 'reopened');
  });

  router.all('/cases', auditAs('review-list'), methodNotAllowed('GET'));
  router.all('/stats', auditAs('review-stats'), methodNotAllowed('GET'));
  router.all('/cases/:id', auditAs('review-view'), methodNotAllowed('GET'));
  for (const action of ['lease', 'decision', 'confirm', 'reopen']) router.all(`/cases/:id/${action}`, auditAs(`review-${action}`), methodNotAllowed('POST'));

  router.use(auditAs('unknown'), () => {
    throw new NotFoundError('unknown-route', 'no such review endpoint');
  });
  return router;
}

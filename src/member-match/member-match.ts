import { createHmac } from 'node:crypto';
import { reviewRequestKey } from '../review/request-key.js';
import type { Consent, Coverage, Parameters } from 'fhir/r4.js';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import { BusinessRuleError, NotFoundError, ReviewPendingError } from '../errors.js';
import { matchDecisions, reviewCasesOpened } from '../metrics.js';
import { findCase, findCaseByRequest, openCase } from '../review/review-cases.js';
import { isHighRisk } from '../review/high-risk.js';
import { findMemberSummary } from '../members/member-index.js';
import type { Redis } from 'ioredis';
import { appendAuditEvent } from '../audit/audit-trail.js';
import { writeRequestAudit, type RequestAudit } from '../audit/request-audit.js';
import { enforceNoLockout, recordMatchAttempt } from '../policy/limits.js';
import { evaluateHrexConsent, type ConsentPermit } from '../consent/hrex-consent.js';
import { optOutStatus } from '../consent/opt-out-registry.js';
import { offeredPerson, parseMemberMatchRequest, type MemberMatchRequest } from '../fhir/member-match-request.js';
import { memberMatchResponse } from '../fhir/resources.js';
import type { Actor } from '../identity/actor.js';
import { saveLink } from '../links/member-links.js';
import type { MatchDecision, MatchedMember } from '../matching/decision.js';
import type { MatchModel } from '../matching/model.js';
import type { NormalizedPerson, PersonFields } from '../matching/record.js';
import { givenNameKey, nameKey, normalizePerson } from '../matching/normalize.js';
import { resolveMember } from '../matching/resolver.js';
import type { Logger } from '../logger.js';

export interface MemberMatchDeps {
  db: Db;
  config: Config;
  /** Key for the keyed hash of the offered demographics kept in the audit trail. */
  phiHashKey: string;
  /** The active Fellegi–Sunter model (cached; a newly activated model is picked up within its TTL). */
  matchModel: () => Promise<MatchModel>;
  logger: Logger;
  /** Brute-force counters and lockouts. */
  redis: Redis;
  now?: () => Date;
}

/**
 * `Patient/$member-match`, after authentication and authorization: parse → consent → resolve → decide →
 * persist + audit. Refusals are thrown as AppErrors once the audit record knows why; a match writes its link
 * and its audit event in one transaction, so neither exists without the other.
 */
export async function memberMatch(
  deps: MemberMatchDeps,
  actor: Actor,
  body: unknown,
  audit: RequestAudit,
  options: { respondAsync?: boolean } = {},
): Promise<Parameters> {
  await enforceNoLockout(deps.redis, actor.clientId);
  const request = parseMemberMatchRequest(body);
  const personHash = demographicsHash(deps.phiHashKey, request);
  audit.details.demographicsHash = personHash;

  const consent = evaluateHrexConsent(request.consent, {
    ownOrganization: deps.config.ownOrganization,
    requesterOrganization: actor.organization,
    canSegmentSensitiveData: deps.config.canSegmentSensitiveData,
    now: deps.now?.() ?? new Date(),
  });
  audit.consentDecision = consent.decision === 'permit' ? 'permit' : `deny:${consent.reason}`;
  if (consent.decision === 'deny') throw new BusinessRuleError(consent.reason, consent.message);
  audit.details.consentPolicy = consent.policyUri;

  // A request already with a reviewer finds its case: pending stays pending; a decision is final (sticky),
  // whatever a later automatic run would say.
  // The offered demographics, normalised once: for the review case's key and for resolution.
  const offered = offeredPerson(request);
  const normalized = normalizePerson(offered);
  const requestKey = reviewRequestKey(deps.phiHashKey, normalized, {
    cards: request.cardIdentifiers,
    subscriberId: request.subscriberId,
    coverageToLink: request.coverageToLink?.identifier,
    consent: request.consent,
  });
  const existing = await findCaseByRequest(deps.db, actor.organization, requestKey);
  let matched: MatchedMember;
  if (existing) {
    audit.details.reviewCase = existing.id;
    if (existing.status !== 'decided') throw new ReviewPendingError(existing.id, deps.config.review.retryAfterSeconds);
    audit.details.decision = existing.decision === 'match' ? 'matched' : 'no-match';
    audit.details.method = 'manual-review';
    matchDecisions.inc({ outcome: 'manual-review' });
    if (existing.decision !== 'match' || !existing.decidedMemberUuid) {
      throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
    }
    const member = await findMemberSummary(deps.db, existing.decidedMemberUuid);
    if (!member) throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
    matched = { memberUuid: member.id, memberId: member.memberId };
  } else {
    matched = await resolveAutomatically(deps, actor, request, { offered, normalized }, audit, personHash, requestKey, options.respondAsync ?? false);
  }

  return completeMatch(deps, actor, audit, matched, { consent: request.consent!, permit: consent, coverageToLink: request.coverageToLink });
}

/**
 * `GET [base]/member-match-status/{case}`: the asynchronous answer to a request that went to review. Pending
 * → `undefined` (the route answers 202); decided → the $member-match result, the link written now under the
 * consent the partner sent (judged again, today); no match → 422. Another partner's case is not found.
 */
export async function memberMatchStatus(deps: MemberMatchDeps, actor: Actor, caseId: string, audit: RequestAudit): Promise<Parameters | undefined> {
  const review = /^[0-9a-f-]{36}$/i.test(caseId) ? await findCase(deps.db, caseId) : undefined;
  if (!review || review.partnerOrganization.system !== actor.organization.system || review.partnerOrganization.value !== actor.organization.value) {
    throw new NotFoundError('not-found', 'no such status for this client');
  }
  audit.details.reviewCase = review.id;
  if (review.status !== 'decided') return undefined;
  audit.details.method = 'manual-review';
  if (review.decision !== 'match' || !review.decidedMemberUuid) {
    throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
  }
  const stored = review.linkRequest as { consent?: Consent | null; coverageToLink?: Coverage | null };
  const consent = evaluateHrexConsent(stored.consent ?? undefined, {
    ownOrganization: deps.config.ownOrganization,
    requesterOrganization: actor.organization,
    canSegmentSensitiveData: deps.config.canSegmentSensitiveData,
    now: deps.now?.() ?? new Date(),
  });
  audit.consentDecision = consent.decision === 'permit' ? 'permit' : `deny:${consent.reason}`;
  if (consent.decision === 'deny') throw new BusinessRuleError(consent.reason, consent.message);
  const member = await findMemberSummary(deps.db, review.decidedMemberUuid);
  if (!member) throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
  return completeMatch(deps, actor, audit, { memberUuid: member.id, memberId: member.memberId }, {
    consent: stored.consent!,
    permit: consent,
    coverageToLink: stored.coverageToLink ?? undefined,
  });
}

/**
 * The last steps of a match, shared by the synchronous answer and the asynchronous status URL: the consent
 * registry, then the link and its audit event in one transaction, then the response.
 */
export async function completeMatch(
  deps: MemberMatchDeps,
  actor: Actor,
  audit: RequestAudit,
  matched: MatchedMember,
  grant: { consent: Consent; permit: ConsentPermit; coverageToLink: Coverage | undefined },
): Promise<Parameters> {
  const { memberUuid, memberId } = matched;
  audit.memberRef = memberUuid;
  // Our consent registry: a member who opted out, or revoked, is not disclosed whatever the partner's consent.
  const optedOut = await optOutStatus(deps.db, memberUuid);
  if (optedOut) {
    audit.consentDecision = `deny:registry-${optedOut}`;
    throw new BusinessRuleError('member-opted-out', 'the member has opted out of payer-to-payer data exchange');
  }
  await deps.db.transaction().execute(async (trx) => {
    const link = await saveLink(trx, {
      memberUuid,
      clientId: linkOwnerClientId(actor),
      partnerOrganization: actor.organization,
      consent: grant.consent,
      permit: grant.permit,
      coverageToLink: grant.coverageToLink,
    });
    audit.details.linkId = link.linkId;
    audit.details.consentId = link.consentId;
    await writeRequestAudit(trx, audit, { outcome: 'success', httpStatus: 200, reasonCode: 'matched' });
  }).catch((error: unknown) => {
    audit.written = false; // rolled back with the link: the failure event is written instead
    throw error;
  });
  return memberMatchResponse(deps.config.fhirBaseUrl, deps.config.memberIdentifierSystem, memberUuid, memberId);
}

/** The scorer's path: resolve, decide, and send uncertain matches to review (case + outbox + audit in one transaction). */
async function resolveAutomatically(
  deps: MemberMatchDeps,
  actor: Actor,
  request: MemberMatchRequest,
  { offered, normalized }: { offered: PersonFields; normalized: NormalizedPerson },
  audit: RequestAudit,
  personHash: string,
  requestKey: string,
  respondAsync: boolean,
): Promise<MatchedMember> {
  const model = await deps.matchModel();
  const { decision, oversizedBlockKinds } = await resolveMember(
    deps.db,
    { model, thresholds: deps.config.matchThresholds, blockCap: deps.config.blockCap },
    offered,
    normalized,
  );
  if (oversizedBlockKinds.length > 0) deps.logger.warn({ blockKinds: oversizedBlockKinds }, 'blocks over the cap were skipped');
  recordDecision(audit, decision);
  matchDecisions.inc({ outcome: decision.outcome });
  await watchForBruteForce(deps, actor, audit, {
    demographicsHash: personHash,
    cardIdentifiers: [...request.cardIdentifiers, ...(request.subscriberId ? [request.subscriberId] : [])],
    unmatched: decision.outcome !== 'matched',
  });

  if (decision.outcome === 'no-match') {
    throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
  }
  if (decision.outcome === 'review') {
    const opened = await deps.db.transaction().execute(async (trx) => {
      const created = await openCase(trx, {
        reason: decision.reason,
        partnerClientId: linkOwnerClientId(actor),
        partnerOrganization: actor.organization,
        requestKey,
        offered,
        linkRequest: { coverageToLink: request.coverageToLink ?? null, consent: request.consent ?? null },
        candidates: decision.top,
        modelVersion: decision.modelVersion,
        bestProbability: decision.best.probability,
        slaDueAt: new Date(Date.now() + deps.config.review.slaHours * 3_600_000),
        highRisk: isHighRisk(request, decision),
      });
      audit.details.reviewCase = created.id;
      // The answer is 422 (synchronous) or 202 with a status URL (Prefer: respond-async).
      await writeRequestAudit(trx, audit, respondAsync
        ? { outcome: 'success', httpStatus: 202, reasonCode: 'review-pending' }
        : { outcome: 'failure', httpStatus: 422, reasonCode: 'manual-review-required' });
      return created;
    });
    if (opened.created) reviewCasesOpened.inc();
    throw new ReviewPendingError(opened.id, deps.config.review.retryAfterSeconds);
  }
  return decision.member;
}

/**
 * The partner client a link belongs to: the caller, or — for an agent acting on delegation — the partner at the
 * head of its delegation chain (the policy lets agents match only for partners).
 */
export function linkOwnerClientId(actor: Actor): string {
  if (actor.actorClass !== 'agent') return actor.clientId;
  const head = actor.delegationChain?.[0] ?? '';
  if (!head.startsWith('partner:')) throw new Error('an agent matched without a partner at the head of its delegation chain');
  return head.slice('partner:'.length);
}

/**
 * Counts the attempt against the client's brute-force limits. Tripping them locks the client's matching for
 * a cooling-off period (later requests answer 429) and writes a security alert to the audit trail; this
 * request is still answered normally.
 */
async function watchForBruteForce(
  deps: MemberMatchDeps,
  actor: Actor,
  audit: RequestAudit,
  attempt: { demographicsHash: string; cardIdentifiers: string[]; unmatched: boolean },
): Promise<void> {
  const tripped = await recordMatchAttempt(deps.redis, deps.config.limits, { clientId: actor.clientId, ...attempt });
  if (!tripped) return;
  deps.logger.warn({ clientId: actor.clientId, reason: tripped }, 'member-match lockout tripped');
  await appendAuditEvent(deps.db, {
    requestId: audit.requestId,
    actor,
    operation: 'security-alert',
    outcome: 'failure',
    reasonCode: `brute-force:${tripped}`,
    details: { lockoutSeconds: deps.config.limits.lockoutSeconds, demographicsHash: attempt.demographicsHash },
  });
}

/** The decision, as the audit trail keeps it: references, probabilities and per-field levels; no demographics. */
function recordDecision(audit: RequestAudit, decision: MatchDecision): void {
  audit.details.decision = decision.outcome;
  audit.details.modelVersion = decision.modelVersion;
  audit.details.candidatesConsidered = decision.candidatesConsidered;
  if (decision.outcome !== 'matched') audit.details.decisionReason = decision.reason;
  audit.details.candidates = decision.top.map((c) => ({
    memberRef: c.memberUuid,
    probability: Number(c.probability.toPrecision(6)),
    matchWeight: Math.round(c.matchWeight * 100) / 100,
    cardHit: c.cardHit,
    explanation: c.explanation,
  }));
}

/**
 * A keyed hash of the normalised demographics: lets the audit trail (and brute-force detection) see that
 * the same person was asked about repeatedly, without holding who that person is.
 */
function demographicsHash(key: string, request: MemberMatchRequest): string {
  const first = request.names[0]!;
  const normalised = [nameKey(first.family), givenNameKey(first.given[0]), request.birthDate].join('|');
  return createHmac('sha256', key).update(normalised).digest('base64url');
}

import { createHmac } from 'node:crypto';
import type { Parameters } from 'fhir/r4.js';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import { BusinessRuleError } from '../errors.js';
import type { Redis } from 'ioredis';
import { appendAuditEvent } from '../audit/audit-trail.js';
import { writeRequestAudit, type RequestAudit } from '../audit/request-audit.js';
import { enforceNoLockout, recordMatchAttempt } from '../policy/limits.js';
import { evaluateHrexConsent } from '../consent/hrex-consent.js';
import { optOutStatus } from '../consent/opt-out-registry.js';
import { offeredPerson, parseMemberMatchRequest, type MemberMatchRequest } from '../fhir/member-match-request.js';
import { memberMatchResponse } from '../fhir/resources.js';
import type { Actor } from '../identity/actor.js';
import { saveLink } from '../links/member-links.js';
import type { MatchDecision } from '../matching/decision.js';
import type { MatchModel } from '../matching/model.js';
import { givenNameKey, nameKey } from '../matching/normalize.js';
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

  const model = await deps.matchModel();
  const { decision, oversizedBlockKinds } = await resolveMember(
    deps.db,
    { model, thresholds: deps.config.matchThresholds, blockCap: deps.config.blockCap },
    offeredPerson(request),
  );
  if (oversizedBlockKinds.length > 0) deps.logger.warn({ blockKinds: oversizedBlockKinds }, 'blocks over the cap were skipped');
  recordDecision(audit, decision);
  await watchForBruteForce(deps, actor, audit, {
    demographicsHash: personHash,
    cardIdentifiers: [...request.cardIdentifiers, ...(request.subscriberId ? [request.subscriberId] : [])],
    unmatched: decision.outcome !== 'matched',
  });

  if (decision.outcome === 'no-match') {
    throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
  }
  if (decision.outcome === 'review') {
    // Until the review queue exists, an uncertain or conflicting match is refused and recorded as such.
    throw new BusinessRuleError('manual-review-required', 'the member could not be identified with confidence; manual review is required');
  }

  const { memberUuid, memberId } = decision.member;
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
      consent: request.consent!,
      permit: consent,
      coverageToLink: request.coverageToLink,
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

/**
 * The partner client a link belongs to: the caller, or — for an agent acting on delegation — the partner at the
 * head of its delegation chain (the policy lets agents match only for partners).
 */
function linkOwnerClientId(actor: Actor): string {
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

import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { evaluateHrexConsent, type ConsentPermit } from '../consent/hrex-consent.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { DecisionThresholds, MatchDecision, ScoredCandidate } from '../matching/decision.js';
import { givenNameKey, nameKey, normalizePerson } from '../matching/normalize.js';
import type { NormalizedPerson } from '../matching/record.js';
import { resolveMembers, type Resolution } from '../matching/engine.js';
import { memberIndexCandidates } from '../members/candidate-source.js';
import type { ModelProvider } from '../members/model-store.js';
import { disclosureStanding } from '../links/member-links.js';
import { findMemberIds } from '../members/member-index.js';
import { matchDecisions } from '../metrics.js';
import { countUnmatched, lockoutOrCountAttempts, lockoutRemaining, reserveReviewCases, type MatchAttempt, type TripReason } from '../policy/limits.js';
import { isHighRisk } from '../review/high-risk.js';
import { reviewRequestKey } from '../review/request-key.js';
import { findCasesByRequests, type ReviewCase } from '../review/review-cases.js';
import { mapConcurrently } from '../shared/concurrency.js';
import type { Authority } from './authority.js';
import { DOORS, type Door, type MatchInput, type MatchPlan, type PlannedBatch, type SecurityAlert } from './types.js';

/**
 * The match pipeline's planning half, for every door: consent → guard (lockout, attempts) → (reviewer's decision |
 * resolve → decide) → guard (misses) → opt-out. Consent is judged first only because it is pure: a locked tenant
 * is still answered `locked` for every input, consent refused or not. Reads only — Postgres is not written; the guards' counters in Redis are — and
 * returns one plan per input with a domain outcome. `commitPlans` (commit.ts) then writes every plan's effect
 * and audit event in the caller's transaction. `$member-match` is a batch of one; bulk and roster chunks are
 * batches of many.
 *
 * A tenant whose counters trip while a batch is planned learns nothing from that batch: attempts are counted
 * before anything is resolved (a trip answers the whole batch `locked`), and a trip on the unmatched count
 * turns every match in the batch into `locked` too.
 */

export interface PipelineDeps {
  db: Db;
  redis: Redis;
  config: Config;
  /** Key for the keyed hashes (review request keys, demographics hashes). */
  phiHashKey: string;
  /** The active Fellegi–Sunter model. */
  matchModel: ModelProvider;
  logger: Logger;
  now?: () => Date;
}

export interface PlanOptions {
  /** Keep each candidate's per-field explanation in the audit details (single matches; batch rows stay compact). */
  explain?: boolean;
}

/** One input on its way through the pipeline. */
interface Prepared {
  index: number;
  input: MatchInput;
  permit: ConsentPermit | undefined;
  normalized: NormalizedPerson;
  requestKey: string;
  attempt: MatchAttempt | undefined;
}

export async function planMatches(
  deps: PipelineDeps,
  door: Door,
  authority: Authority,
  inputs: readonly MatchInput[],
  options: PlanOptions = {},
): Promise<PlannedBatch> {
  const { config, redis } = deps;
  const { discloses } = DOORS[door];
  const plans: MatchPlan[] = new Array<MatchPlan>(inputs.length);
  const alerts: SecurityAlert[] = [];
  const alert = (reasonCode: string, details: Record<string, unknown>) =>
    alerts.push({ reasonCode, details: { door, tenant: authority.tenant, actorChain: authority.actorChain, ...details } });

  // 1. Consent, judged before matching: a member whose consent fails is not looked for at all.
  const now = deps.now?.() ?? new Date();
  const live: Prepared[] = [];
  inputs.forEach((input, index) => {
    // Keyed hashes for the brute-force counters and the audit trail: only doors that disclose count attempts.
    const attempt = discloses ? attemptOf(deps.phiHashKey, input) : undefined;
    let permit: ConsentPermit | undefined;
    if (discloses) {
      const consent = evaluateHrexConsent(input.consent, {
        ownOrganization: config.ownOrganization,
        requesterOrganization: authority.organization,
        canSegmentSensitiveData: config.canSegmentSensitiveData,
        now,
      });
      if (consent.decision === 'deny') {
        plans[index] = {
          outcome: 'consent-refused',
          reasonCode: consent.reason,
          message: consent.message,
          consentDecision: `deny:${consent.reason}`,
          details: { demographicsHash: attempt!.demographicsHash },
          effects: {},
        };
        return;
      }
      permit = consent;
    }
    const normalized = normalizePerson(input.offered);
    const requestKey = reviewRequestKey(deps.phiHashKey, normalized, {
      cards: input.cards,
      subscriberId: input.subscriberId,
      coverageToLink: input.coverageToLink?.identifier,
      consent: input.consent,
    });
    live.push({ index, input, permit, normalized, requestKey, attempt });
  });

  // 2. A locked tenant is answered without matching anything; otherwise brute-force attempts are counted before
  // anything is resolved (partner doors: they disclose). One Redis round trip for both.
  const fresh = live.filter((p) => !p.input.reviewCase);
  const { lockedFor, trip } = await lockoutOrCountAttempts(redis, config.limits, authority.tenant, discloses ? fresh.map((p) => p.attempt!) : [], deps.db);
  if (lockedFor > 0) return { plans: inputs.map(() => lockedPlan(lockedFor)), alerts };
  if (trip) {
    tripped(deps, authority, trip, alert);
    for (const p of live) plans[p.index] = lockedPlan(config.limits.lockoutSeconds);
    return { plans, alerts };
  }

  // 3. A person already with a reviewer takes the reviewer's answer: pending stays pending, a decision is final.
  const cases = await findCasesByRequests(deps.db, authority.organization, fresh.map((p) => p.requestKey));
  const caseOf = (p: Prepared) => p.input.reviewCase ?? cases.get(p.requestKey);
  const decidedMemberIds = await findMemberIds(deps.db, live.flatMap((p) => caseOf(p)?.decidedMemberUuid ?? []));

  // 4. Everyone else goes to the scorer.
  const toScore = live.filter((p) => !caseOf(p));
  const resolutions = await resolveAll(deps, toScore);
  for (const r of resolutions) matchDecisions.inc({ door, outcome: r.decision.outcome });
  const decisionOf = new Map(toScore.map((p, i) => [p, resolutions[i]!.decision]));

  // 5. Misses count against the tenant (partner doors); a trip withholds every match in this batch.
  let unmatchedTrip: TripReason | undefined;
  if (discloses) {
    unmatchedTrip = await countUnmatched(redis, config.limits, authority.tenant, resolutions.filter((r) => r.decision.outcome !== 'matched').length, deps.db);
    if (unmatchedTrip) tripped(deps, authority, unmatchedTrip, alert);
  }

  // 6. Each person's plan, from the reviewer's case or the scorer's decision.
  for (const p of live) {
    const review = caseOf(p);
    plans[p.index] = review
      ? planFromCase(door, review, p, decidedMemberIds)
      : planFromDecision(deps, authority, p, decisionOf.get(p)!, options);
    if (unmatchedTrip && plans[p.index]!.outcome === 'matched') plans[p.index] = lockedPlan(config.limits.lockoutSeconds);
  }

  // 7. New review cases come out of the tenant's hourly budget; beyond it, the uncertain are not matched.
  const wanting = live.filter((p) => plans[p.index]!.effects.newCase);
  const budget = authority.linkOwnerClientId === null ? config.limits.internalReviewCasesPerHour : config.limits.reviewCasesPerHour;
  const { granted, firstRefusal } = await reserveReviewCases(redis, budget, authority.tenant, wanting.length);
  for (const p of wanting.slice(granted)) {
    const plan = plans[p.index]!;
    plans[p.index] = { ...plan, outcome: 'review-budget-exhausted', reasonCode: 'review-budget-exhausted', effects: {} };
  }
  if (granted < wanting.length) {
    deps.logger.warn({ tenant: authority.tenant, door, refused: wanting.length - granted }, 'review budget exhausted');
    if (firstRefusal) alert('review-budget-exhausted', { budgetPerHour: budget });
  }

  // 8. Partner doors: our opt-out registry overrides any consent; a match not opted out becomes a link.
  if (discloses) {
    const matched = live.filter((p) => plans[p.index]!.outcome === 'matched');
    const standings = await disclosureStanding(
      deps.db,
      authority.organization,
      matched.map((p) => ({ memberUuid: plans[p.index]!.member!.memberUuid, consent: p.input.consent!, coverageToLink: p.input.coverageToLink })),
    );
    for (const [k, p] of matched.entries()) {
      const plan = plans[p.index]!;
      const member = plan.member!;
      const standing = standings[k]!;
      if (standing.optOut) {
        plans[p.index] = { ...plan, outcome: 'opted-out', reasonCode: 'member-opted-out', message: 'the member has opted out of payer-to-payer data exchange', consentDecision: `deny:registry-${standing.optOut}` };
        continue;
      }
      // A supervisor revoked this partner's link to the member under this very Consent: the same request sent
      // again discloses nothing (not even the member id); a new Consent from the member relinks.
      if (standing.revokedUnderSameConsent) {
        plans[p.index] = { ...plan, outcome: 'consent-refused', reasonCode: 'link-revoked', message: 'the link to this member under this Consent was revoked; a new Consent from the member is needed', consentDecision: 'deny:link-revoked' };
        continue;
      }
      plan.details.consentPolicy = p.permit!.policyUri;
      plan.effects.link = {
        memberUuid: member.memberUuid,
        clientId: authority.linkOwnerClientId!,
        partnerOrganization: authority.organization,
        consent: p.input.consent!,
        permit: p.permit!,
        coverageToLink: p.input.coverageToLink,
        existing: standing.existing,
      };
    }
  }
  return { plans, alerts };
}

function lockedPlan(retryAfterSeconds: number): MatchPlan {
  return {
    outcome: 'locked',
    reasonCode: 'matching-locked',
    message: "this client's member matching is suspended after suspicious activity",
    retryAfterSeconds,
    details: {},
    effects: {},
  };
}

function tripped(deps: PipelineDeps, authority: Authority, reason: TripReason, alert: (code: string, details: Record<string, unknown>) => void): void {
  deps.logger.warn({ tenant: authority.tenant, reason }, 'member-match lockout tripped');
  alert(`brute-force:${reason}`, { lockoutSeconds: deps.config.limits.lockoutSeconds });
}

/** The scorer, a group of people per candidate query and several groups at a time. */
async function resolveAll(deps: PipelineDeps, people: readonly Prepared[]): Promise<Resolution[]> {
  if (people.length === 0) return [];
  // The candidate lookup reads which model is active in the same statement (src/members/member-index.ts): the
  // cached model scores unless that says another one is active now, which is then loaded.
  const options = { model: deps.matchModel.cached(), modelOfVersion: deps.matchModel.ofVersion, thresholds: deps.config.matchThresholds };
  const source = memberIndexCandidates(deps.db, deps.config.blockCap);
  const groups: Prepared[][] = [];
  for (let k = 0; k < people.length; k += PEOPLE_PER_QUERY) groups.push(people.slice(k, k + PEOPLE_PER_QUERY));
  const resolved = await mapConcurrently(groups, deps.config.batch.rowParallelism, (group) =>
    resolveMembers(source, options, group.map((p) => ({ offered: p.input.offered, normalized: p.normalized }))),
  );
  const resolutions = resolved.flat();
  const oversized = new Set(resolutions.flatMap((r) => r.oversizedBlockKinds));
  if (oversized.size > 0) deps.logger.warn({ blockKinds: [...oversized] }, 'blocks over the cap were skipped');
  return resolutions;
}

/** People per candidate query: enough to spread a query's fixed costs, few enough to keep several in flight. */
export const PEOPLE_PER_QUERY = 50;

function planFromCase(door: Door, review: ReviewCase, p: Prepared, memberIds: Map<string, string>): MatchPlan {
  const details = { ...hashDetails(p), method: 'manual-review', reviewCase: review.id };
  const consentDecision = p.permit ? 'permit' : undefined;
  if (review.status !== 'decided') {
    return { outcome: 'review-pending', reasonCode: 'review-pending', reviewCaseId: review.id, band: 'review', consentDecision, details: { ...details, decision: 'review' }, effects: {} };
  }
  matchDecisions.inc({ door, outcome: 'manual-review' });
  const memberId = review.decidedMemberUuid ? memberIds.get(review.decidedMemberUuid) : undefined;
  if (review.decision !== 'match' || !review.decidedMemberUuid || !memberId) {
    return { outcome: 'no-match', reasonCode: 'no-match', reviewCaseId: review.id, band: 'review', consentDecision, details: { ...details, decision: 'no-match' }, effects: {} };
  }
  return {
    outcome: 'matched',
    reasonCode: 'matched',
    member: { memberUuid: review.decidedMemberUuid, memberId },
    reviewCaseId: review.id,
    band: 'review',
    consentDecision,
    details: { ...details, decision: 'matched' },
    effects: {},
  };
}

function planFromDecision(deps: PipelineDeps, authority: Authority, p: Prepared, decision: MatchDecision, options: PlanOptions): MatchPlan {
  const base = {
    band: scoreBand(deps.config.matchThresholds, decision.top[0]),
    probability: decision.top[0]?.probability,
    consentDecision: p.permit ? 'permit' : undefined,
    details: { ...hashDetails(p), ...decisionDetails(decision, options.explain ?? false) },
    decision,
  };
  switch (decision.outcome) {
    case 'matched':
      return { ...base, outcome: 'matched', reasonCode: 'matched', member: decision.member, effects: {} };
    case 'no-match':
      return { ...base, outcome: 'no-match', reasonCode: 'no-match', effects: {} };
    case 'review':
      return {
        ...base,
        outcome: 'review-pending',
        reasonCode: 'review-pending',
        effects: {
          newCase: {
            reason: decision.reason,
            partnerClientId: authority.linkOwnerClientId,
            partnerOrganization: authority.organization,
            requestKey: p.requestKey,
            offered: p.input.offered,
            // What completing the link needs once a reviewer decides (nothing, for our own workloads).
            linkRequest: authority.linkOwnerClientId === null ? {} : { coverageToLink: p.input.coverageToLink ?? null, consent: p.input.consent ?? null },
            candidates: decision.top,
            modelVersion: decision.modelVersion,
            bestProbability: decision.best.probability,
            slaDueAt: new Date(Date.now() + deps.config.review.slaHours * 3_600_000),
            highRisk: isHighRisk({ consent: p.input.consent }, decision),
          },
        },
      };
  }
}

/** Where the best candidate's probability falls against the thresholds: `high`, `review`, `low`, or `none`. */
function scoreBand(thresholds: DecisionThresholds, best: ScoredCandidate | undefined): string {
  if (!best) return 'none';
  if (best.probability >= thresholds.upper) return 'high';
  if (best.probability >= thresholds.lower) return 'review';
  return 'low';
}

/**
 * The decision as the audit trail keeps it: references, probabilities and (for single matches) per-field levels;
 * never demographics. Batch rows leave the explanations out: a 100,000-row job would otherwise write hundreds of
 * megabytes of audit trail (the review case keeps them for every uncertain row).
 */
function decisionDetails(decision: MatchDecision, explain: boolean): Record<string, unknown> {
  return {
    decision: decision.outcome,
    modelVersion: decision.modelVersion,
    candidatesConsidered: decision.candidatesConsidered,
    ...(decision.outcome !== 'matched' ? { decisionReason: decision.reason } : {}),
    candidates: decision.top.map((c) => ({
      memberRef: c.memberUuid,
      probability: Number(c.probability.toPrecision(6)),
      ...(explain ? { matchWeight: Math.round(c.matchWeight * 100) / 100 } : {}),
      cardHit: c.cardHit,
      ...(explain ? { explanation: c.explanation } : {}),
    })),
  };
}

/** The demographics hash an audit event keeps, where the door computed one. */
function hashDetails(p: Prepared): { demographicsHash?: string } {
  return p.attempt ? { demographicsHash: p.attempt.demographicsHash } : {};
}

/**
 * The keyed hashes the brute-force counters see: the person (name and birth date), the name in its birth year,
 * and the birth date. They let the counters (and the audit trail) see one person asked about repeatedly
 * without holding who that person is.
 */
function attemptOf(key: string, input: MatchInput): MatchAttempt {
  const name = [nameKey(input.offered.family), givenNameKey(input.offered.given)].join('|');
  const birthDate = input.offered.birthDate ?? '';
  const hash = (material: string) => createHmac('sha256', key).update(material).digest('base64url');
  return {
    demographicsHash: hash(`${name}|${birthDate}`),
    nameYearHash: hash(`${name}|${birthDate.slice(0, 4)}`),
    birthDateHash: hash(birthDate).slice(0, 16),
    cardIdentifiers: input.cards.concat(input.subscriberId ? [input.subscriberId] : []),
  };
}

/** Seconds the caller's tenant stays locked out, or 0: a door that accepts work for later refuses it now. */
export async function tenantLockout(redis: Redis, authority: Authority, db?: Db): Promise<number> {
  return lockoutRemaining(redis, authority.tenant, db);
}

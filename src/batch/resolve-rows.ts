import { sql } from 'kysely';
import type { SystemValue } from '../config.js';
import type { DbOrTx } from '../db/database.js';
import type { DecisionThresholds, MatchDecision, ScoredCandidate } from '../matching/decision.js';
import type { NormalizedPerson, PersonFields } from '../matching/record.js';
import { resolveMembers } from '../matching/resolver.js';
import { matchDecisions, reviewCasesOpened } from '../metrics.js';
import { findCasesByRequests, openCase, type NewCase, type ReviewCase } from '../review/review-cases.js';
import { mapConcurrently, type BatchDeps, type RowPlan } from './chunks.js';
import type { BatchJob } from './jobs.js';

/**
 * Resolution for batch rows: exactly the single-match engine (normalise → block → compare → score →
 * decide), with the review cases a chunk's rows already have looked up in one query. A row already with a
 * reviewer takes the reviewer's answer (pending, or decided and final), as a single $member-match would.
 */

export interface RowToResolve {
  offered: PersonFields;
  normalized: NormalizedPerson;
  requestKey: string;
}

export type RowResolution =
  /** With a reviewer already; a decided match carries the member's id. */
  | { via: 'review-case'; review: ReviewCase; decidedMemberId: string | undefined }
  | { via: 'scorer'; decision: MatchDecision };

export async function resolveRows(deps: BatchDeps, requester: SystemValue, rows: readonly RowToResolve[]): Promise<RowResolution[]> {
  const cases = await findCasesByRequests(deps.db, requester, rows.map((r) => r.requestKey));
  const decidedMemberIds = await memberIdsOf(deps.db, [...cases.values()].flatMap((c) => (c.decidedMemberUuid ? [c.decidedMemberUuid] : [])));
  const model = await deps.matchModel();
  const options = { model, thresholds: deps.config.matchThresholds, blockCap: deps.config.blockCap };
  const resolutions: RowResolution[] = new Array<RowResolution>(rows.length);
  const toScore: number[] = [];
  rows.forEach((row, i) => {
    const review = cases.get(row.requestKey);
    if (review) resolutions[i] = { via: 'review-case', review, decidedMemberId: review.decidedMemberUuid ? decidedMemberIds.get(review.decidedMemberUuid) : undefined };
    else toScore.push(i);
  });
  // The rows go to the resolver in groups (one candidate query per group), several groups at a time.
  const groups: number[][] = [];
  for (let k = 0; k < toScore.length; k += ROWS_PER_QUERY) groups.push(toScore.slice(k, k + ROWS_PER_QUERY));
  const oversized = new Set<string>();
  await mapConcurrently(groups, deps.config.batch.rowParallelism, async (group) => {
    const resolved = await resolveMembers(deps.db, options, group.map((i) => ({ offered: rows[i]!.offered, normalized: rows[i]!.normalized })));
    resolved.forEach(({ decision, oversizedBlockKinds }, k) => {
      for (const kind of oversizedBlockKinds) oversized.add(kind);
      matchDecisions.inc({ outcome: decision.outcome });
      resolutions[group[k]!] = { via: 'scorer', decision };
    });
  });
  if (oversized.size > 0) deps.logger.warn({ blockKinds: [...oversized] }, 'blocks over the cap were skipped');
  return resolutions;
}

/** Rows per candidate query: enough to spread a query's fixed costs, few enough to keep several in flight. */
const ROWS_PER_QUERY = 50;

/** Where the best candidate's probability falls against the thresholds: `high`, `review`, `low`, or `none`. */
export function scoreBand(thresholds: DecisionThresholds, best: ScoredCandidate | undefined): string {
  if (!best) return 'none';
  if (best.probability >= thresholds.upper) return 'high';
  if (best.probability >= thresholds.lower) return 'review';
  return 'low';
}

/**
 * The decision as a batch row's audit event keeps it: references and probabilities, never demographics.
 * (Per-field explanations stay with single matches and review cases; a 100,000-row job would otherwise write
 * hundreds of megabytes of audit trail.)
 */
export function decisionDetails(decision: MatchDecision): Record<string, unknown> {
  return {
    decision: decision.outcome,
    modelVersion: decision.modelVersion,
    candidatesConsidered: decision.candidatesConsidered,
    ...(decision.outcome !== 'matched' ? { decisionReason: decision.reason } : {}),
    candidates: decision.top.map((c) => ({ memberRef: c.memberUuid, probability: Number(c.probability.toPrecision(6)), cardHit: c.cardHit })),
  };
}

async function memberIdsOf(db: DbOrTx, memberUuids: string[]): Promise<Map<string, string>> {
  if (memberUuids.length === 0) return new Map();
  const rows = await db.selectFrom('members').select(['id', 'member_id']).where('id', '=', sql<string>`any(${memberUuids}::uuid[])`).execute();
  return new Map(rows.map((r) => [r.id, r.member_id]));
}

/**
 * A row's plan from its resolution, for every kind of batch job: a reviewer's pending case → `review`; a
 * reviewer's decision, or the scorer's → `matched` (memberUuid and memberId set, no write yet: the caller
 * adds what a match does for its kind) or `no-match`; the scorer's uncertain band → `review`, opening the case
 * `newCase` describes in the chunk's transaction.
 */
export function planFromResolution(
  deps: BatchDeps,
  job: BatchJob,
  resolution: RowResolution,
  newCase: (decision: Extract<MatchDecision, { outcome: 'review' }>) => NewCase,
): RowPlan {
  const consentDecision = job.kind === 'bulk-member-match' ? 'permit' : undefined;
  if (resolution.via === 'review-case') {
    const { review } = resolution;
    const details = { decision: review.status === 'decided' ? review.decision : 'review', method: 'manual-review', reviewCase: review.id };
    if (review.status !== 'decided') {
      return { outcome: 'review', band: 'review', reviewCaseId: review.id, reason: 'manual-review-pending', audit: { outcome: 'success', reasonCode: 'review-pending', consentDecision, details } };
    }
    if (review.decision !== 'match' || !review.decidedMemberUuid || !resolution.decidedMemberId) {
      return { outcome: 'no-match', band: 'review', reviewCaseId: review.id, reason: 'no-match', audit: { outcome: 'failure', reasonCode: 'no-match', consentDecision, details } };
    }
    return {
      outcome: 'matched',
      memberUuid: review.decidedMemberUuid,
      memberId: resolution.decidedMemberId,
      band: 'review',
      reviewCaseId: review.id,
      audit: { outcome: 'success', reasonCode: 'matched', consentDecision, details },
    };
  }
  const { decision } = resolution;
  const details = decisionDetails(decision);
  const band = scoreBand(deps.config.matchThresholds, decision.top[0]);
  const probability = decision.top[0]?.probability;
  switch (decision.outcome) {
    case 'no-match':
      return { outcome: 'no-match', band, probability, reason: decision.reason, audit: { outcome: 'failure', reasonCode: 'no-match', consentDecision, details } };
    case 'matched':
      return {
        outcome: 'matched',
        memberUuid: decision.member.memberUuid,
        memberId: decision.member.memberId,
        band,
        probability,
        audit: { outcome: 'success', reasonCode: 'matched', consentDecision, details },
      };
    case 'review':
      return {
        outcome: 'review',
        band,
        probability,
        reason: decision.reason,
        audit: { outcome: 'success', reasonCode: 'review-pending', consentDecision, details },
        async write(trx, plan) {
          const opened = await openCase(trx, { ...newCase(decision), batchJobId: job.id });
          if (opened.created) reviewCasesOpened.inc();
          plan.reviewCaseId = opened.id;
        },
      };
  }
}

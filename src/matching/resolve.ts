import type { ComparisonVector, NormalizedPerson } from './record.js';
import { compareRecords } from './compare.js';
import type { DecisionThresholds, MatchDecision, ScoredCandidate } from './decision.js';
import { score, type MatchModel } from './model.js';

/**
 * compare → score → decide, for one query against its candidates. Pure: the caller has normalised the
 * query and fetched the candidates (blocks ∪ card hits).
 */

export interface Candidate {
  memberUuid: string;
  memberId: string;
  person: NormalizedPerson;
  cardHit: boolean;
}

/** Levels of the fields that tell household members apart, good enough to auto-match on. */
const CONFIRMING_GIVEN = new Set(['exact', 'nickname', 'jw-high']);
const CONFIRMING_BIRTH_DATE = new Set(['exact', 'transposed']);

/**
 * Fellegi–Sunter assumes fields independent given match status; within a household they are not: family
 * name, address, phone, e-mail and subscriber id agree *together* for a spouse, a child, a twin or a
 * Jr/Sr pair. Their sum can outweigh a disagreeing first name or birth date. So a pair auto-matches only
 * when the person-level fields themselves confirm it: first name (exact, nickname or near-exact spelling),
 * birth date (exact or day/month transposed), no contradicting sex or generational suffix. Anything else
 * at a high score goes to a reviewer.
 */
export function identityConfirmed(vector: ComparisonVector): boolean {
  return (
    CONFIRMING_GIVEN.has(vector.given) &&
    CONFIRMING_BIRTH_DATE.has(vector.birthDate) &&
    vector.sex !== 'different' &&
    vector.suffix !== 'different'
  );
}

export function scoreCandidates(model: MatchModel, query: NormalizedPerson, candidates: readonly Candidate[]): (ScoredCandidate & { vector: ComparisonVector })[] {
  // The same member may arrive from several blocks and a card hit: score once, remember the card hit.
  const unique = new Map<string, Candidate>();
  for (const c of candidates) {
    const seen = unique.get(c.memberUuid);
    unique.set(c.memberUuid, seen ? { ...seen, cardHit: seen.cardHit || c.cardHit } : c);
  }
  return [...unique.values()]
    .map((c) => {
      const vector = compareRecords(query, c.person);
      const s = score(model.parameters, vector, query);
      return {
        memberUuid: c.memberUuid,
        memberId: c.memberId,
        cardHit: c.cardHit,
        probability: s.probability,
        matchWeight: s.matchWeight,
        explanation: s.explanation,
        vector,
      };
    })
    .sort((a, b) => b.matchWeight - a.matchWeight || a.memberId.localeCompare(b.memberId));
}

export function decide(
  model: MatchModel,
  thresholds: DecisionThresholds,
  query: NormalizedPerson,
  candidates: readonly Candidate[],
): MatchDecision {
  const scored = scoreCandidates(model, query, candidates);
  const top = scored.slice(0, 3).map(({ vector: _vector, ...rest }) => rest);
  const base = { modelVersion: model.version, candidatesConsidered: scored.length, top };
  const [best, runnerUp] = scored;
  if (!best) return { ...base, outcome: 'no-match', reason: 'no-candidate' };
  if (best.probability < thresholds.lower) return { ...base, outcome: 'no-match', reason: 'below-threshold' };
  const bestPublic = top[0]!;
  if (runnerUp && runnerUp.probability >= thresholds.lower && best.matchWeight - runnerUp.matchWeight < thresholds.marginBits) {
    return { ...base, outcome: 'review', reason: 'conflict', best: bestPublic };
  }
  if (best.probability < thresholds.upper) return { ...base, outcome: 'review', reason: 'uncertain', best: bestPublic };
  if (!identityConfirmed(best.vector)) return { ...base, outcome: 'review', reason: 'identity-unconfirmed', best: bestPublic };
  return { ...base, outcome: 'matched', member: { memberUuid: best.memberUuid, memberId: best.memberId }, best: bestPublic };
}

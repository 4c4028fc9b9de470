import type { FieldExplanation } from './model.js';

/**
 * The one decision type every resolution produces. The HTTP layer, the review queue, batch jobs and the
 * evaluation all read this and nothing else.
 */
export interface MatchedMember {
  /** Internal reference (members.id): what links and the audit trail hold. */
  memberUuid: string;
  /** Our member identifier, returned to the partner as MemberIdentifier. */
  memberId: string;
}

/** One scored candidate: references and the per-field explanation, never demographics. */
export interface ScoredCandidate extends MatchedMember {
  probability: number;
  /** Prior log-odds plus field weights, in bits. */
  matchWeight: number;
  /** Reached through a card identifier (deterministic hit) as well as, or instead of, the blocks. */
  cardHit: boolean;
  explanation: FieldExplanation[];
}

export type ReviewReason =
  /** Best probability between the lower and upper thresholds. */
  | 'uncertain'
  /** Another candidate is within the margin of the best: a close competitor, never guessed between. */
  | 'conflict'
  /** Probability clears the threshold but a field that tells family members apart does not confirm. */
  | 'identity-unconfirmed';

interface DecisionBase {
  modelVersion: string;
  candidatesConsidered: number;
  /** The best candidates (at most three), best first. */
  top: ScoredCandidate[];
}

export type MatchDecision =
  | (DecisionBase & { outcome: 'matched'; member: MatchedMember; best: ScoredCandidate })
  | (DecisionBase & { outcome: 'review'; reason: ReviewReason; best: ScoredCandidate })
  | (DecisionBase & { outcome: 'no-match'; reason: 'no-candidate' | 'below-threshold' });

/**
 * The default thresholds (MATCH_UPPER_THRESHOLD ≈ 19.9 bits, MATCH_LOWER_THRESHOLD ≈ 16.6 bits,
 * MATCH_MARGIN_BITS), chosen by `eval --sweep` on the synthetic training set (docs/accuracy.md); their
 * estimated error rates for a model come from `checkModel` (diagnostics.ts).
 */
export const DEFAULT_THRESHOLDS: DecisionThresholds = { upper: 0.999999, lower: 0.99999, marginBits: 10 };

export interface DecisionThresholds {
  /** Auto-match at or above this probability (and only without a conflict). */
  upper: number;
  /** Below this, no match; between lower and upper, review. */
  lower: number;
  /** A competitor within this many bits of the best candidate's match weight is a conflict. */
  marginBits: number;
}

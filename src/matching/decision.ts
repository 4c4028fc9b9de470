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

export interface DecisionThresholds {
  /** Auto-match at or above this probability (and only without a conflict). */
  upper: number;
  /** Below this, no match; between lower and upper, review. */
  lower: number;
  /** A competitor within this many bits of the best candidate's match weight is a conflict. */
  marginBits: number;
}

/**
 * The one decision type every resolution path produces. The deterministic resolver makes it today; the
 * probabilistic scorer and the review queue extend it, and the HTTP layer maps it to a response in one place.
 */
export interface MatchedMember {
  /** Internal reference (members.id): what links and the audit trail hold. */
  memberUuid: string;
  /** Our member identifier, returned to the partner as MemberIdentifier. */
  memberId: string;
}

export type MatchDecision =
  | { outcome: 'matched'; member: MatchedMember; method: 'deterministic'; candidatesConsidered: number }
  | { outcome: 'no-match'; reason: 'no-candidate' | 'not-confirmed'; candidatesConsidered: number }
  | { outcome: 'ambiguous'; candidatesConsidered: number; confirmed: number };

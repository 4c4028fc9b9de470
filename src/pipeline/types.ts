import type { Consent, Coverage } from 'fhir/r4.js';
import type { NewLink } from '../links/member-links.js';
import type { MatchDecision, MatchedMember } from '../matching/decision.js';
import type { PersonFields } from '../matching/record.js';
import type { NewCase, ReviewCase } from '../review/review-cases.js';

/**
 * The doors into the match pipeline. Partner doors disclose (a match becomes a link the partner may read), so
 * they judge consent, consult the opt-out registry and count brute-force attempts; roster reconciliation answers
 * only our own workload, so it does none of those. Every door is subject to the lockout and the review budget.
 */
export const DOORS = {
  'member-match': { discloses: true },
  'member-match-status': { discloses: true },
  'bulk-member-match': { discloses: true },
  'roster-reconcile': { discloses: false },
} as const;
export type Door = keyof typeof DOORS;

/** One person asked about, whatever the door. */
export interface MatchInput {
  /** The demographics offered, in the matcher's terms (identifiers: every card value offered). */
  offered: PersonFields;
  /** What keys the request for its review case: the card identifiers and subscriber id as asked. */
  cards: readonly string[];
  subscriberId?: string | undefined;
  /** Partner doors: the member's HRex Consent (judged) and the partner's CoverageToLink (linked). */
  consent?: Consent | undefined;
  coverageToLink?: Coverage | undefined;
  /** The review case this input is the answer to (the status URL): no scoring, no counting. */
  reviewCase?: ReviewCase | undefined;
}

/** What the pipeline decided for one person: domain outcomes only; each door maps them to its own answer. */
export type MatchOutcome =
  | 'matched'
  /** With a reviewer: the case exists, or is opened at commit. */
  | 'review-pending'
  | 'no-match'
  /** The partner's consent cannot be honoured: nothing was matched. */
  | 'consent-refused'
  /** Matched, but the member opted out with us: not disclosed. */
  | 'opted-out'
  /** The tenant's matching is locked: nothing was matched. */
  | 'locked'
  /** Uncertain, but the tenant's review budget is spent: answered as not matched, no case opened. */
  | 'review-budget-exhausted';

export interface MatchPlan {
  outcome: MatchOutcome;
  /** The stable code the audit event and batch results record (`matched`, `no-match`, `consent-expired`, …). */
  reasonCode: string;
  /** For refusals: a message safe to show the client (never PHI). */
  message?: string | undefined;
  member?: MatchedMember | undefined;
  reviewCaseId?: string | undefined;
  /** Where the best candidate fell against the thresholds (`high`, `review`, `low`, `none`), and its probability. */
  band?: string | undefined;
  probability?: number | undefined;
  /** `permit`, `deny:<reason>` or `deny:registry-<status>`, when consent was judged. */
  consentDecision?: string | undefined;
  /** For `locked`: seconds until the tenant may ask again. */
  retryAfterSeconds?: number | undefined;
  /** What the audit event keeps: references, hashes, probabilities, never demographics. */
  details: Record<string, unknown>;
  /** What committing the plan writes (in the caller's transaction, with the audit events). */
  effects: { link?: NewLink; newCase?: NewCase };
  /** The scorer's decision, when the scorer decided. */
  decision?: MatchDecision | undefined;
}

/** A guard that tripped while planning: committed as one `security-alert` audit event. */
export interface SecurityAlert {
  reasonCode: string;
  details: Record<string, unknown>;
}

export interface PlannedBatch {
  plans: MatchPlan[];
  alerts: SecurityAlert[];
}

import type { Consent } from 'fhir/r4.js';
import { HREX_CONSENT_POLICY_SENSITIVE } from '../consent/hrex-consent.js';
import type { MatchDecision } from '../matching/decision.js';

/**
 * Cases a second reviewer must confirm (four eyes): a #sensitive consent (the member's sensitive data may
 * follow the link), candidates in conflict, or a card that points at someone other than the best candidate.
 */
export function isHighRisk(request: { consent?: Consent | undefined }, decision: Extract<MatchDecision, { outcome: 'review' }>): boolean {
  const sensitive = request.consent?.policy?.some((p) => p.uri === HREX_CONSENT_POLICY_SENSITIVE) ?? false;
  const cardElsewhere = decision.top.some((c) => c.cardHit && c.memberUuid !== decision.best.memberUuid);
  return sensitive || decision.reason === 'conflict' || cardElsewhere;
}

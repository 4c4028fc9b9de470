import { createHmac } from 'node:crypto';
import type { Parameters } from 'fhir/r4.js';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import { BusinessRuleError } from '../errors.js';
import { writeRequestAudit, type RequestAudit } from '../audit/request-audit.js';
import { evaluateHrexConsent } from '../consent/hrex-consent.js';
import { parseMemberMatchRequest, type MemberMatchRequest } from '../fhir/member-match-request.js';
import { memberMatchResponse } from '../fhir/resources.js';
import type { Actor } from '../identity/actor.js';
import { saveLink } from '../links/member-links.js';
import { resolveDeterministically } from '../matching/deterministic.js';
import { givenNameKey, nameKey } from '../matching/normalize.js';
import { findCardCandidates } from '../members/member-index.js';

export interface MemberMatchDeps {
  db: Db;
  config: Config;
  /** Key for the keyed hash of the offered demographics kept in the audit trail. */
  phiHashKey: string;
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
  const request = parseMemberMatchRequest(body);
  audit.details.demographicsHash = demographicsHash(deps.phiHashKey, request);

  const consent = evaluateHrexConsent(request.consent, {
    ownOrganization: deps.config.ownOrganization,
    requesterOrganization: actor.organization,
    canSegmentSensitiveData: deps.config.canSegmentSensitiveData,
    now: deps.now?.() ?? new Date(),
  });
  audit.consentDecision = consent.decision === 'permit' ? 'permit' : `deny:${consent.reason}`;
  if (consent.decision === 'deny') throw new BusinessRuleError(consent.reason, consent.message);
  audit.details.consentPolicy = consent.policyUri;

  const candidates = await findCardCandidates(deps.db, request.cardIdentifiers, request.subscriberId);
  const decision = resolveDeterministically(request, candidates);
  audit.details.decision = decision.outcome;
  audit.details.candidatesConsidered = decision.candidatesConsidered;

  if (decision.outcome === 'no-match') {
    throw new BusinessRuleError('no-match', 'no member matches the submitted demographics and coverage');
  }
  if (decision.outcome === 'ambiguous') {
    throw new BusinessRuleError('multiple-matches', 'more than one member matches; the request cannot be resolved uniquely');
  }

  const { memberUuid, memberId } = decision.member;
  audit.memberRef = memberUuid;
  audit.details.method = decision.method;
  await deps.db.transaction().execute(async (trx) => {
    const link = await saveLink(trx, {
      memberUuid,
      clientId: actor.clientId,
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
 * A keyed hash of the normalised demographics: lets the audit trail (and brute-force detection) see that
 * the same person was asked about repeatedly, without holding who that person is.
 */
function demographicsHash(key: string, request: MemberMatchRequest): string {
  const first = request.names[0]!;
  const normalised = [nameKey(first.family), givenNameKey(first.given[0]), request.birthDate].join('|');
  return createHmac('sha256', key).update(normalised).digest('base64url');
}

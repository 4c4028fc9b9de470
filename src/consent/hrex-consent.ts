import { createHash } from 'node:crypto';
import type { Consent, Reference } from 'fhir/r4.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { memoisedPerObject } from '../shared/memo.js';
import type { SystemValue } from '../shared/system-value.js';

/**
 * Judges the HRex Consent carried by a $member-match request: may we disclose this member's data from us to
 * the authenticated partner, today, under a policy we can honour?
 */

export const HREX_CONSENT_POLICY_REGULAR =
  'http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular';
export const HREX_CONSENT_POLICY_SENSITIVE =
  'http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#sensitive';

const PERFORMER_ROLE = { system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'performer' };
const RECIPIENT_ROLE = { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' };
const DISCLOSE = { system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'disclose' };

export type ConsentDenialReason =
  | 'consent-required'
  | 'consent-not-active'
  | 'consent-scope'
  | 'consent-category'
  | 'consent-policy-unsupported'
  | 'consent-policy-cannot-be-honoured'
  | 'consent-not-permit'
  | 'consent-action'
  | 'consent-period-missing'
  | 'consent-not-yet-valid'
  | 'consent-expired'
  | 'consent-discloser-mismatch'
  | 'consent-recipient-mismatch';

export interface ConsentPermit {
  decision: 'permit';
  policyUri: string;
  periodStart: Date;
  periodEnd: Date;
  sourceReference: string | undefined;
}

export interface ConsentDenial {
  decision: 'deny';
  reason: ConsentDenialReason;
  /** Safe to show the client: never repeats the consent's identifiers or dates. */
  message: string;
}

export type ConsentDecision = ConsentPermit | ConsentDenial;

export interface ConsentContext {
  /** Us: the payer that discloses. */
  ownOrganization: SystemValue;
  /** The authenticated partner: the only acceptable recipient. */
  requesterOrganization: SystemValue;
  canSegmentSensitiveData: boolean;
  now: Date;
}

const deny = (reason: ConsentDenialReason, message: string): ConsentDenial => ({ decision: 'deny', reason, message });

export function evaluateHrexConsent(consent: Consent | undefined, context: ConsentContext): ConsentDecision {
  if (!consent) return deny('consent-required', 'a Consent is required for payer-to-payer exchange');
  if (consent.status !== 'active') return deny('consent-not-active', 'the Consent is not active');
  if (!hasCoding(consent.scope?.coding, 'http://terminology.hl7.org/CodeSystem/consentscope', 'patient-privacy')) {
    return deny('consent-scope', 'Consent.scope must be patient-privacy');
  }
  if (!(Array.isArray(consent.category) ? consent.category : []).some((c) => hasCoding(c?.coding, 'http://terminology.hl7.org/CodeSystem/v3-ActCode', 'IDSCL'))) {
    return deny('consent-category', 'Consent.category must include IDSCL');
  }

  const provision = consent.provision;
  if (provision?.type !== 'permit') return deny('consent-not-permit', 'Consent.provision.type must be permit');
  if (!(Array.isArray(provision.action) ? provision.action : []).some((a) => hasCoding(a?.coding, DISCLOSE.system, DISCLOSE.code))) {
    return deny('consent-action', 'Consent.provision.action must be disclose');
  }

  const periodStart = parseBoundary(provision.period?.start, 'start');
  const periodEnd = parseBoundary(provision.period?.end, 'end');
  if (!periodStart || !periodEnd) {
    return deny('consent-period-missing', 'Consent.provision.period needs a valid start and end');
  }
  if (context.now < periodStart) return deny('consent-not-yet-valid', 'the Consent period has not started');
  if (context.now > periodEnd) return deny('consent-expired', 'the Consent period has ended');

  const policyUri = consent.policy?.[0]?.uri;
  if (policyUri === HREX_CONSENT_POLICY_REGULAR) {
    if (!context.canSegmentSensitiveData) {
      return deny(
        'consent-policy-cannot-be-honoured',
        'the #regular consent policy cannot be honoured: this payer cannot segment sensitive data',
      );
    }
  } else if (policyUri !== HREX_CONSENT_POLICY_SENSITIVE) {
    return deny('consent-policy-unsupported', 'Consent.policy must be the HRex #regular or #sensitive policy');
  }

  // Junk entries (null, strings) are ignored rather than trusted: they can never name a party.
  const actors = (Array.isArray(provision.actor) ? provision.actor : []).filter((a) => a !== null && typeof a === 'object');
  const discloser = actors.find((a) => hasCoding(a.role?.coding, PERFORMER_ROLE.system, PERFORMER_ROLE.code));
  if (!sameIdentifier(discloser?.reference, context.ownOrganization)) {
    return deny('consent-discloser-mismatch', 'the Consent does not name this payer as the disclosing party');
  }
  const recipient = actors.find((a) => hasCoding(a.role?.coding, RECIPIENT_ROLE.system, RECIPIENT_ROLE.code));
  if (!sameIdentifier(recipient?.reference, context.requesterOrganization)) {
    return deny('consent-recipient-mismatch', 'the Consent does not name the requesting payer as the recipient');
  }

  return {
    decision: 'permit',
    policyUri,
    periodStart,
    periodEnd,
    sourceReference: consent.sourceReference?.reference ?? undefined,
  };
}

function hasCoding(codings: { system?: string; code?: string }[] | undefined, system: string, code: string): boolean {
  return Array.isArray(codings) && codings.some((c) => c?.system === system && c?.code === code);
}

function sameIdentifier(reference: Reference | undefined, expected: SystemValue): boolean {
  const identifier = reference?.identifier;
  return identifier?.system === expected.system && identifier?.value === expected.value;
}

/**
 * Consent periods are FHIR dates or dateTimes. A bare date covers the whole day (UTC): a period ending
 * `2027-01-31` is still valid on that day.
 */
function parseBoundary(value: string | undefined, side: 'start' | 'end'): Date | undefined {
  if (typeof value !== 'string') return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const date = new Date(`${value}T${side === 'start' ? '00:00:00.000' : '23:59:59.999'}Z`);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * A Consent's identity: the sha256 of its canonical JSON (the same Consent sent again is the same consent).
 * Memoised per parsed resource: a matched request needs it for its review key, its standing and its link.
 */
export const consentResourceHash: (consent: Consent) => string = memoisedPerObject((consent: Consent) =>
  createHash('sha256').update(canonicalJson(consent)).digest('hex'),
);

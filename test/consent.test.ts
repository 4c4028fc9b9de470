import type { Consent } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { evaluateHrexConsent, type ConsentContext } from '../src/consent/hrex-consent.js';

const US = { system: 'http://hl7.org/fhir/sid/us-npi', value: '9876543210' };
const PARTNER = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };
const context: ConsentContext = { ownOrganization: US, requesterOrganization: PARTNER, canSegmentSensitiveData: true, now: new Date('2026-11-23T12:00:00Z') };

function consent(options: Parameters<typeof hrexExampleRequest>[0] = {}): Consent {
  const request = hrexExampleRequest({ periodStart: '2026-11-01', periodEnd: '2027-10-31', ...options });
  return request.parameter!.find((p) => p.name === 'Consent')!.resource as Consent;
}

const reasonOf = (c: Consent | undefined, ctx: Partial<ConsentContext> = {}) => {
  const decision = evaluateHrexConsent(c, { ...context, ...ctx });
  return decision.decision === 'deny' ? decision.reason : 'permit';
};

describe('HRex consent gate', () => {
  it('permits the HL7 example inside its period, from us to the requester', () => {
    expect(reasonOf(consent())).toBe('permit');
  });
  it('treats a date-only end as the whole day', () => {
    expect(reasonOf(consent({ periodEnd: '2026-11-23' }))).toBe('permit');
    expect(reasonOf(consent({ periodEnd: '2026-11-22' }))).toBe('consent-expired');
    expect(reasonOf(consent({ periodStart: '2026-11-24' }))).toBe('consent-not-yet-valid');
  });
  it('refuses #regular when sensitive data cannot be segmented, permits #sensitive', () => {
    expect(reasonOf(consent({ policy: 'regular' }), { canSegmentSensitiveData: false })).toBe('consent-policy-cannot-be-honoured');
    expect(reasonOf(consent({ policy: 'sensitive' }), { canSegmentSensitiveData: false })).toBe('permit');
  });
  it('refuses a consent for another recipient, or from another discloser', () => {
    expect(reasonOf(consent(), { requesterOrganization: { system: PARTNER.system, value: '1' } })).toBe('consent-recipient-mismatch');
    expect(reasonOf(consent(), { ownOrganization: { system: US.system, value: '2' } })).toBe('consent-discloser-mismatch');
  });
  it.each([
    ['missing', undefined, 'consent-required'],
    ['inactive', { status: 'inactive' }, 'consent-not-active'],
    ['wrong scope', { scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } }, 'consent-scope'],
    ['no IDSCL', { category: [] }, 'consent-category'],
    ['unknown policy', { policy: [{ uri: 'http://example.org/policy' }] }, 'consent-policy-unsupported'],
  ] as const)('refuses a consent that is %s', (_label, patch, reason) => {
    expect(reasonOf(patch === undefined ? undefined : ({ ...consent(), ...patch } as Consent))).toBe(reason);
  });
  it('refuses deny provisions, other actions and open periods', () => {
    const c = consent();
    expect(reasonOf({ ...c, provision: { ...c.provision, type: 'deny' } })).toBe('consent-not-permit');
    expect(reasonOf({ ...c, provision: { ...c.provision, action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'access' }] }] } })).toBe('consent-action');
    expect(reasonOf({ ...c, provision: { ...c.provision, period: { start: '2026-01-01' } } })).toBe('consent-period-missing');
    expect(reasonOf({ ...c, provision: { ...c.provision, period: { start: '2026-01-01', end: 'soon' } } })).toBe('consent-period-missing');
  });
});

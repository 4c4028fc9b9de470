import type { Address, Coverage, ContactPoint, HumanName, Parameters, Patient } from 'fhir/r4.js';
import type { QueryPerson } from './hazards.js';

/**
 * Builds the HRex `$member-match` request a new payer would send for a person: MemberPatient, CoverageToMatch
 * (the old card — ours), CoverageToLink (the new payer's coverage). No Consent: evaluation measures matching,
 * and the consent layer is tested elsewhere.
 */

const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const NPI = 'http://hl7.org/fhir/sid/us-npi';
/** The identifier system our member ids are issued under, as on the HRex example card. */
export const OLD_PAYER_MEMBER_SYSTEM = 'http://example.org/old-payer/identifiers/member';
const OLD_PAYER_NPI = '9876543210';
const NEW_PAYER_NPI = '0123456789';

/** What the partner copied from the member's old card. */
export interface Card {
  /** The member id field of the card (MB); a never-issued id when the partner has no usable card. */
  identifier: string;
  subscriberId?: string | undefined;
}

export function memberPatient(p: QueryPerson): Patient {
  const name: HumanName = { family: p.family, given: [p.given, ...p.middle] };
  if (p.suffix) name.suffix = [p.suffix];
  const telecom: ContactPoint[] = [];
  if (p.phone) telecom.push({ system: 'phone', value: p.phone });
  if (p.email) telecom.push({ system: 'email', value: p.email });
  const patient: Patient = { resourceType: 'Patient', id: '1', name: [name] };
  if (telecom.length > 0) patient.telecom = telecom;
  patient.gender = p.gender;
  patient.birthDate = p.birthDate;
  if (p.address) {
    // FHIR forbids empty strings: blank parts (common in FEBRL records) are left out.
    const address: Address = {};
    if (p.address.line) address.line = [p.address.line];
    if (p.address.city) address.city = p.address.city;
    if (p.address.state) address.state = p.address.state;
    if (p.address.postalCode) address.postalCode = p.address.postalCode;
    if (Object.keys(address).length > 0) patient.address = [address];
  }
  return patient;
}

export function memberMatchParameters(p: QueryPerson, card: Card, newCoverageId: string): Parameters {
  const coverageToMatch: Coverage = {
    resourceType: 'Coverage',
    id: '9876B1',
    identifier: [
      {
        type: { coding: [{ system: V2_0203, code: 'MB' }] },
        system: OLD_PAYER_MEMBER_SYSTEM,
        value: card.identifier,
      },
    ],
    status: 'active',
    beneficiary: { reference: 'Patient/1' },
    payor: [{ identifier: { system: NPI, value: OLD_PAYER_NPI } }],
  };
  if (card.subscriberId) coverageToMatch.subscriberId = card.subscriberId;
  const coverageToLink: Coverage = {
    resourceType: 'Coverage',
    id: 'AA87654',
    identifier: [{ system: 'http://example.org/new-payer/identifiers/coverage', value: newCoverageId }],
    status: 'active',
    beneficiary: { reference: 'Patient/1' },
    payor: [{ identifier: { system: NPI, value: NEW_PAYER_NPI }, display: 'New Health Plan' }],
  };
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'MemberPatient', resource: memberPatient(p) },
      { name: 'CoverageToMatch', resource: coverageToMatch },
      { name: 'CoverageToLink', resource: coverageToLink },
    ],
  };
}

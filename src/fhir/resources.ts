import type { Bundle, Identifier, Parameters, Patient } from 'fhir/r4.js';
import type { MemberSummary } from '../members/member-index.js';

/** Member identifier type codings: HRex 1.0.0 wants v2-0203#MB, 1.1.0+ hrex-temp#UMB; both satisfy both. */
export const MEMBER_IDENTIFIER_TYPE = {
  coding: [
    { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB', display: 'Member Number' },
    { system: 'http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp', code: 'UMB', display: 'Member Number' },
  ],
};

export function memberIdentifier(system: string, memberId: string): Identifier {
  return { type: MEMBER_IDENTIFIER_TYPE, system, value: memberId };
}

export function memberMatchResponse(fhirBaseUrl: string, identifierSystem: string, memberUuid: string, memberId: string): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'MemberIdentifier', valueIdentifier: memberIdentifier(identifierSystem, memberId) },
      { name: 'MemberId', valueReference: { reference: `${fhirBaseUrl}/Patient/${memberUuid}` } },
    ],
  };
}

/** The minimum a new payer needs to confirm whom it matched: no address, phone or e-mail. */
export function minimalPatient(identifierSystem: string, member: MemberSummary): Patient {
  return {
    resourceType: 'Patient',
    id: member.id,
    identifier: [memberIdentifier(identifierSystem, member.memberId)],
    name: [
      {
        family: member.family,
        given: [member.given, ...(member.middle ? [member.middle] : [])],
        ...(member.suffix ? { suffix: [member.suffix] } : {}),
      },
    ],
    birthDate: member.birthDate,
    ...(member.gender ? { gender: member.gender as Patient['gender'] } : {}),
  };
}

export function searchsetBundle(selfUrl: string, fhirBaseUrl: string, patients: Patient[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: patients.length,
    link: [{ relation: 'self', url: selfUrl }],
    entry: patients.map((p) => ({ fullUrl: `${fhirBaseUrl}/Patient/${p.id}`, resource: p, search: { mode: 'match' } })),
  };
}

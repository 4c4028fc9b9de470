import type { Bundle, Identifier, Parameters, Patient } from 'fhir/r4.js';
import type { MemberSummary } from '../members/member-index.js';

/**
 * Member identifier type codings: HRex 1.0.0 wants v2-0203#MB, 1.1.0+ hrex-temp#UMB; both satisfy both. Each
 * display is its code system's own: hrex-temp 1.1.0 renamed UMB (1.0.0's "Member Number").
 */
export const MEMBER_IDENTIFIER_TYPE = {
  coding: [
    { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB', display: 'Member Number' },
    { system: 'http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp', code: 'UMB', display: 'Unique Product-independent Payer Person Identifier' },
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
    // FHIR JSON has no empty arrays: an empty searchset has no `entry` at all.
    ...(patients.length > 0 ? { entry: patients.map((p) => ({ fullUrl: `${fhirBaseUrl}/Patient/${p.id}`, resource: p, search: { mode: 'match' as const } })) } : {}),
  };
}

/**
 * FHIR JSON forbids empty arrays (and objects left empty by removing them): a resource built with `[]` for
 * "none" is sent without the element. The one filter every FHIR answer goes through.
 */
export function withoutEmptyArrays<T>(value: T): T {
  return prune(value) as T;
}

function prune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(prune).filter((v) => !isEmpty(v));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const pruned = prune(item);
    if (!isEmpty(pruned)) out[key] = pruned;
  }
  return out;
}

function isEmpty(value: unknown): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.length === 0;
  return value !== null && typeof value === 'object' && Object.keys(value).length === 0;
}

import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { CoverageRecord, MemberRecord } from '../member-repository.js';
import type { FieldLabels, RosterFields } from './columns.js';
import { validateCoverageFields, validateMemberFields } from './validate.js';

/**
 * The FHIR NDJSON roster reader: one Patient or Coverage resource per line (see docs/roster-format.md). Both are
 * mapped onto the CSV columns and validated by the same rules, with reasons naming FHIR paths.
 */

const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** `Patient/{id}`, relative or absolute, optionally versioned. */
const PATIENT_REFERENCE = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** Longest accepted NDJSON line; a longer line is rejected without being held in memory. */
export const MAX_NDJSON_LINE_LENGTH = 1024 * 1024;

export type NdjsonLineEvent = { line: number; text: string } | { line: number; tooLong: true };

/**
 * Splits a byte stream into lines (LF or CRLF) with their 1-based numbers, skipping blank lines. Memory is
 * bounded by `maxLength`: the rest of an over-long line is discarded as it streams past.
 */
export async function* readLines(
  input: Readable,
  maxLength = MAX_NDJSON_LINE_LENGTH,
): AsyncGenerator<NdjsonLineEvent, void, undefined> {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  let overLong = false;
  let line = 0;
  function* complete(text: string): Generator<NdjsonLineEvent> {
    line++;
    if (overLong) {
      overLong = false;
      yield { line, tooLong: true };
      return;
    }
    const trimmed = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (trimmed.trim() !== '') yield { line, text: trimmed };
  }
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        const piece = overLong ? '' : partial + text.slice(start, nl);
        partial = '';
        if (piece.length > maxLength) overLong = true;
        yield* complete(piece);
        start = nl + 1;
      }
      if (!overLong) {
        partial += text.slice(start);
        if (partial.length > maxLength) {
          overLong = true;
          partial = '';
        }
      }
    }
    const rest = partial + decoder.end();
    if (rest !== '' || overLong) yield* complete(overLong ? '' : rest);
  } finally {
    if (!input.destroyed) input.destroy();
  }
}

export type NdjsonRosterItem =
  | { kind: 'patient'; member: MemberRecord }
  | { kind: 'coverage'; coverage: CoverageRecord; beneficiaryId: string }
  | { kind: 'rejected'; reason: string };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objects(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function hasCode(concept: unknown, code: string, system?: string): boolean {
  if (!isObject(concept)) return false;
  return objects(concept.coding).some((c) => c.code === code && (system === undefined || c.system === undefined || c.system === system));
}

/** A FHIR dateTime keeps its date part; a plain date stays as is (and is validated later). */
function datePart(value: unknown): string | undefined {
  const text = str(value);
  if (text === undefined) return undefined;
  return /^\d{4}-\d{2}-\d{2}T/.test(text) ? text.slice(0, 10) : text;
}

const PATIENT_LABELS: FieldLabels = {
  member_id: 'Patient.identifier (member id)',
  given: 'Patient.name.given',
  middle: 'Patient.name.given',
  family: 'Patient.name.family',
  suffix: 'Patient.name.suffix',
  birth_date: 'Patient.birthDate',
  gender: 'Patient.gender',
  address_line: 'Patient.address.line',
  city: 'Patient.address.city',
  state: 'Patient.address.state',
  postal_code: 'Patient.address.postalCode',
  phone: 'Patient.telecom (phone)',
  email: 'Patient.telecom (email)',
};

const COVERAGE_LABELS: FieldLabels = {
  coverage_id: 'Coverage.identifier',
  subscriber_id: 'Coverage.subscriberId',
  relationship: 'Coverage.relationship',
  group: 'Coverage.class (group)',
  plan: 'Coverage.class (plan)',
  period_start: 'Coverage.period.start',
  period_end: 'Coverage.period.end',
};

/** The member id: the identifier in our member system, else the one typed v2-0203 `MB`. */
function memberIdentifier(patient: Json, memberIdentifierSystem: string): string | undefined {
  const identifiers = objects(patient.identifier).filter((i) => typeof i.value === 'string' && i.value.trim() !== '');
  const chosen =
    identifiers.find((i) => i.system === memberIdentifierSystem) ?? identifiers.find((i) => hasCode(i.type, 'MB', V2_0203));
  return str(chosen?.value);
}

function patientItem(patient: Json, memberIdentifierSystem: string): NdjsonRosterItem {
  const id = patient.id;
  if (id !== undefined && (typeof id !== 'string' || !FHIR_ID.test(id))) {
    return { kind: 'rejected', reason: 'Patient.id is not a valid FHIR id' };
  }
  const name = objects(patient.name)[0] ?? {};
  const given = Array.isArray(name.given) ? name.given.filter((g): g is string => typeof g === 'string') : [];
  const address = objects(patient.address)[0] ?? {};
  const telecom = objects(patient.telecom);
  const fields: RosterFields = {
    member_id: memberIdentifier(patient, memberIdentifierSystem),
    given: given[0],
    middle: given.slice(1).join(' '),
    family: str(name.family),
    suffix: Array.isArray(name.suffix) ? str(name.suffix[0]) : undefined,
    birth_date: str(patient.birthDate),
    gender: str(patient.gender),
    address_line: Array.isArray(address.line) ? str(address.line[0]) : undefined,
    city: str(address.city),
    state: str(address.state),
    postal_code: str(address.postalCode),
    phone: str(telecom.find((t) => t.system === 'phone')?.value),
    email: str(telecom.find((t) => t.system === 'email')?.value),
  };
  const result = validateMemberFields(fields, PATIENT_LABELS);
  if (!result.ok) return { kind: 'rejected', reason: result.reasons.join('; ') };
  return { kind: 'patient', member: { ...result.value, sourceResourceId: typeof id === 'string' ? id : null } };
}

function coverageItem(coverage: Json): NdjsonRosterItem {
  const classes = objects(coverage.class);
  const classValue = (code: string) =>
    str(classes.find((c) => hasCode(c.type, code, 'http://terminology.hl7.org/CodeSystem/coverage-class'))?.value);
  const relationship = isObject(coverage.relationship) ? objects(coverage.relationship.coding)[0] : undefined;
  const period = isObject(coverage.period) ? coverage.period : {};
  const fields: RosterFields = {
    coverage_id: str(objects(coverage.identifier)[0]?.value),
    subscriber_id: str(coverage.subscriberId),
    relationship: str(relationship?.code),
    group: classValue('group'),
    plan: classValue('plan'),
    period_start: datePart(period.start),
    period_end: datePart(period.end),
  };
  const result = validateCoverageFields(fields, COVERAGE_LABELS);
  const reasons = result.ok ? [] : [...result.reasons];
  const reference = isObject(coverage.beneficiary) ? str(coverage.beneficiary.reference) : undefined;
  const beneficiaryId = reference === undefined ? undefined : PATIENT_REFERENCE.exec(reference.trim())?.[1];
  if (reference === undefined) reasons.push('missing Coverage.beneficiary.reference');
  else if (beneficiaryId === undefined) reasons.push('Coverage.beneficiary is not a Patient reference');
  if (!result.ok || beneficiaryId === undefined) return { kind: 'rejected', reason: reasons.join('; ') };
  return { kind: 'coverage', coverage: result.value, beneficiaryId };
}

/** Parses and validates one NDJSON line. Never throws. */
export function parseNdjsonRosterLine(text: string, memberIdentifierSystem: string): NdjsonRosterItem {
  let resource: unknown;
  try {
    resource = JSON.parse(text);
  } catch {
    return { kind: 'rejected', reason: 'not valid JSON' };
  }
  if (!isObject(resource)) return { kind: 'rejected', reason: 'not a JSON object' };
  switch (resource.resourceType) {
    case 'Patient':
      return patientItem(resource, memberIdentifierSystem);
    case 'Coverage':
      return coverageItem(resource);
    default:
      return { kind: 'rejected', reason: 'unsupported resourceType (only Patient and Coverage are imported)' };
  }
}

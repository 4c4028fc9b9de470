import type { Consent, Coverage, Parameters, ParametersParameter, Patient } from 'fhir/r4.js';
import { StructureError } from '../errors.js';
import { parseIsoDate } from '../matching/normalize.js';
import type { PersonFields } from '../matching/record.js';

/**
 * Parses and structurally validates an HRex `Patient/$member-match` request (1.0.0 and 1.1.0+). Structural
 * problems are 400s that name the offending element by FHIRPath; business rules (consent, matching) are
 * judged later, by their own layers.
 */

export interface MemberMatchRequest {
  memberPatient: Patient;
  coverageToMatch: Coverage;
  coverageToLink: Coverage | undefined;
  consent: Consent | undefined;
  /** Names offered for the member, each with at least a family and a given name. */
  names: { family: string; given: string[]; suffix: string | undefined }[];
  birthDate: string;
  gender: string | undefined;
  /** Identifier values the caller holds for the member with us: card member ids, coverage ids. */
  cardIdentifiers: string[];
  subscriberId: string | undefined;
  /** The first address offered (home preferred): weak evidence, members move between payers. */
  address: { line: string | undefined; city: string | undefined; state: string | undefined; postalCode: string | undefined } | undefined;
  phone: string | undefined;
  email: string | undefined;
}

const PART_NAMES = ['MemberPatient', 'CoverageToMatch', 'CoverageToLink', 'Consent'] as const;
type PartName = (typeof PART_NAMES)[number];
const PART_TYPES: Record<PartName, string> = {
  MemberPatient: 'Patient',
  CoverageToMatch: 'Coverage',
  CoverageToLink: 'Coverage',
  Consent: 'Consent',
};
const US_CORE_BIRTHSEX = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const MEMBER_ID_TYPES = new Set(['MB', 'UMB']);

function fail(code: string, message: string, expression: string): never {
  throw new StructureError(code, message, { expression });
}

export interface ParseOptions {
  /**
   * Inside a PDex MemberBundle there is exactly one Patient, so any local `Patient/<id>` reference can only
   * mean it; the published PDex example itself refers to `Patient/1` from a MemberPatient whose id is
   * `patient-1`. Single $member-match requests keep the strict HRex rule (references resolve to MemberPatient).
   */
  anyLocalPatientReference?: boolean;
}

export function parseMemberMatchRequest(body: unknown, options: ParseOptions = {}): MemberMatchRequest {
  if (!isObject(body) || body.resourceType !== 'Parameters') {
    fail('not-parameters', 'the request body must be a FHIR Parameters resource', 'Parameters');
  }
  const parameters = body as unknown as Parameters;
  if (!Array.isArray(parameters.parameter)) {
    fail('parameters-missing', 'Parameters.parameter is required', 'Parameters.parameter');
  }

  const parts = new Map<PartName, { resource: Record<string, unknown>; path: string }>();
  (parameters.parameter as unknown[]).forEach((raw, index) => {
    const path = `Parameters.parameter[${index}]`;
    if (!isObject(raw)) fail('parameter-invalid', 'each parameter must be an object', path);
    const parameter = raw as unknown as ParametersParameter;
    const name = parameter.name as PartName;
    if (!PART_NAMES.includes(name)) {
      fail('parameter-unknown', 'unknown parameter name for $member-match', `${path}.name`);
    }
    if (parts.has(name)) fail('parameter-repeated', `${name} may appear only once`, path);
    const resource = parameter.resource as unknown;
    if (!isObject(resource) || resource.resourceType !== PART_TYPES[name]) {
      fail('parameter-resource', `${name} must carry a ${PART_TYPES[name]} resource`, `${path}.resource`);
    }
    parts.set(name, { resource: resource as Record<string, unknown>, path: `${path}.resource` });
  });

  const patientPart = parts.get('MemberPatient') ?? fail('member-patient-missing', 'MemberPatient is required', 'Parameters.parameter');
  const coveragePart =
    parts.get('CoverageToMatch') ?? fail('coverage-to-match-missing', 'CoverageToMatch is required', 'Parameters.parameter');

  const patient = patientPart.resource as unknown as Patient;
  const names = parseNames(patient, patientPart.path);
  const birthDate =
    parseIsoDate(typeof patient.birthDate === 'string' ? patient.birthDate : undefined) ??
    fail('birthdate-invalid', 'MemberPatient.birthDate is required as a full date (YYYY-MM-DD)', `${patientPart.path}.birthDate`);
  if (birthDate > latestTodayOnEarth()) fail('birthdate-invalid', 'MemberPatient.birthDate may not be in the future', `${patientPart.path}.birthDate`);
  const gender = parseGender(patient, patientPart.path);
  const address = parseAddress(patient, patientPart.path);
  const { phone, email } = parseTelecom(patient, patientPart.path);

  const coverage = coveragePart.resource as unknown as Coverage;
  const cardIdentifiers = [
    ...identifierValues(coverage.identifier, `${coveragePart.path}.identifier`, () => true),
    ...identifierValues(patient.identifier, `${patientPart.path}.identifier`, isMemberIdentifier),
  ];
  const subscriberId = optionalString(coverage.subscriberId, `${coveragePart.path}.subscriberId`);
  if (cardIdentifiers.length === 0 && !subscriberId) {
    fail(
      'coverage-identifier-missing',
      'CoverageToMatch needs an identifier (member id) or a subscriberId',
      `${coveragePart.path}.identifier`,
    );
  }

  // References to the member SHALL be local and resolve to MemberPatient.
  const patientRef = typeof patient.id === 'string' && patient.id ? `Patient/${patient.id}` : undefined;
  const checkReference = (reference: unknown, expression: string) => {
    if (reference === undefined) return;
    if (!isObject(reference)) fail('reference-invalid', 'a reference must be an object', expression);
    const ref = (reference as { reference?: unknown }).reference;
    if (ref === undefined) return;
    if (typeof ref !== 'string' || !/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(ref)) {
      fail('reference-not-local', 'references to the member must be local (Patient/<id>)', `${expression}.reference`);
    }
    if (ref !== patientRef && !options.anyLocalPatientReference) {
      fail('reference-unresolved', 'reference does not resolve to the MemberPatient', `${expression}.reference`);
    }
  };
  checkReference(coverage.beneficiary, `${coveragePart.path}.beneficiary`);

  const linkPart = parts.get('CoverageToLink');
  if (linkPart) checkReference((linkPart.resource as unknown as Coverage).beneficiary, `${linkPart.path}.beneficiary`);

  const consentPart = parts.get('Consent');
  if (consentPart) {
    const consent = consentPart.resource as unknown as Consent;
    checkReference(consent.patient, `${consentPart.path}.patient`);
    if (consent.performer !== undefined && !Array.isArray(consent.performer)) {
      fail('performer-invalid', 'Consent.performer must be an array', `${consentPart.path}.performer`);
    }
    (consent.performer ?? []).forEach((performer, i) => {
      if (!isObject(performer)) fail('performer-invalid', 'Consent.performer entries must be References', `${consentPart.path}.performer[${i}]`);
      const ref = (performer as { reference?: unknown }).reference;
      // Only references to a Patient are about the member; an Organization performer is allowed.
      if (typeof ref === 'string' && /(^|\/)Patient\//.test(ref)) {
        checkReference(performer, `${consentPart.path}.performer[${i}]`);
      }
    });
  }

  return {
    memberPatient: patient,
    coverageToMatch: coverage,
    coverageToLink: linkPart?.resource as Coverage | undefined,
    consent: consentPart?.resource as Consent | undefined,
    names,
    birthDate,
    gender,
    cardIdentifiers: [...new Set(cardIdentifiers)],
    subscriberId,
    address,
    phone,
    email,
  };
}

/** What the request says about the person, in the matcher's terms. The first complete name is the one scored. */
export function offeredPerson(request: MemberMatchRequest): PersonFields {
  const [name] = request.names;
  return {
    given: name?.given[0],
    middle: name?.given.slice(1).join(' ') || undefined,
    family: name?.family,
    suffix: name?.suffix,
    birthDate: request.birthDate,
    sex: request.gender,
    addressLine: request.address?.line,
    city: request.address?.city,
    state: request.address?.state,
    postalCode: request.address?.postalCode,
    phone: request.phone,
    email: request.email,
    identifiers: [...request.cardIdentifiers, ...(request.subscriberId ? [request.subscriberId] : [])],
  };
}

function parseNames(patient: Patient, path: string): MemberMatchRequest['names'] {
  if (!Array.isArray(patient.name) || patient.name.length === 0) {
    fail('name-missing', 'MemberPatient.name is required', `${path}.name`);
  }
  const names: MemberMatchRequest['names'] = [];
  (patient.name as unknown[]).forEach((raw, i) => {
    if (!isObject(raw)) fail('name-invalid', 'each name must be an object', `${path}.name[${i}]`);
    const name = raw as { family?: unknown; given?: unknown; suffix?: unknown };
    const family = optionalString(name.family, `${path}.name[${i}].family`);
    if (name.suffix !== undefined && (!Array.isArray(name.suffix) || !name.suffix.every((x) => typeof x === 'string'))) {
      fail('suffix-invalid', 'name.suffix must be an array of strings', `${path}.name[${i}].suffix`);
    }
    const suffix = ((name.suffix as string[] | undefined) ?? []).map((x) => x.trim()).filter(Boolean).join(' ') || undefined;
    if (name.given !== undefined && (!Array.isArray(name.given) || !name.given.every((g) => typeof g === 'string'))) {
      fail('given-invalid', 'name.given must be an array of strings', `${path}.name[${i}].given`);
    }
    const given = ((name.given as string[] | undefined) ?? []).map((g) => g.trim()).filter(Boolean);
    if (family && given.length > 0) names.push({ family, given, suffix });
  });
  if (names.length === 0) {
    fail('name-incomplete', 'MemberPatient.name needs a family and a given name', `${path}.name[0]`);
  }
  return names;
}

function parseGender(patient: Patient, path: string): string | undefined {
  if (patient.gender !== undefined) {
    if (!['male', 'female', 'other', 'unknown'].includes(patient.gender as string)) {
      fail('gender-invalid', 'MemberPatient.gender must be male, female, other or unknown', `${path}.gender`);
    }
    return patient.gender;
  }
  const birthSex = Array.isArray(patient.extension)
    ? patient.extension.find((e) => isObject(e) && e.url === US_CORE_BIRTHSEX)
    : undefined;
  if (!birthSex) {
    fail('gender-missing', 'MemberPatient needs gender or the US Core birthsex extension', `${path}.gender`);
  }
  const code = (birthSex as { valueCode?: unknown }).valueCode;
  return code === 'F' ? 'female' : code === 'M' ? 'male' : undefined;
}

function parseAddress(patient: Patient, path: string): MemberMatchRequest['address'] {
  if (patient.address === undefined) return undefined;
  if (!Array.isArray(patient.address)) fail('address-invalid', 'MemberPatient.address must be an array', `${path}.address`);
  const addresses = (patient.address as unknown[]).map((raw, i) => {
    const at = `${path}.address[${i}]`;
    if (!isObject(raw)) fail('address-invalid', 'each address must be an object', at);
    if (raw.line !== undefined && (!Array.isArray(raw.line) || !raw.line.every((l) => typeof l === 'string'))) {
      fail('address-invalid', 'address.line must be an array of strings', `${at}.line`);
    }
    const line = ((raw.line as string[] | undefined) ?? []).map((l) => l.trim()).filter(Boolean).join(' ');
    return {
      use: optionalString(raw.use, `${at}.use`),
      line: line || undefined,
      city: optionalString(raw.city, `${at}.city`),
      state: optionalString(raw.state, `${at}.state`),
      postalCode: optionalString(raw.postalCode, `${at}.postalCode`),
    };
  });
  const chosen = addresses.find((a) => a.use === 'home') ?? addresses.find((a) => a.use !== 'old') ?? addresses[0];
  if (!chosen) return undefined;
  const { line, city, state, postalCode } = chosen;
  return { line, city, state, postalCode };
}

function parseTelecom(patient: Patient, path: string): { phone: string | undefined; email: string | undefined } {
  if (patient.telecom === undefined) return { phone: undefined, email: undefined };
  if (!Array.isArray(patient.telecom)) fail('telecom-invalid', 'MemberPatient.telecom must be an array', `${path}.telecom`);
  let phone: string | undefined;
  let email: string | undefined;
  (patient.telecom as unknown[]).forEach((raw, i) => {
    const at = `${path}.telecom[${i}]`;
    if (!isObject(raw)) fail('telecom-invalid', 'each telecom must be an object', at);
    const system = optionalString(raw.system, `${at}.system`);
    const value = optionalString(raw.value, `${at}.value`);
    if (system === 'phone') phone ??= value;
    if (system === 'email') email ??= value;
  });
  return { phone, email };
}

function isMemberIdentifier(identifier: Record<string, unknown>): boolean {
  const codings = (identifier.type as { coding?: unknown } | undefined)?.coding;
  return (
    Array.isArray(codings) &&
    codings.some((c) => isObject(c) && MEMBER_ID_TYPES.has(c.code as string) && (c.system === V2_0203 || c.code === 'UMB'))
  );
}

function identifierValues(
  identifiers: unknown,
  path: string,
  keep: (identifier: Record<string, unknown>) => boolean,
): string[] {
  if (identifiers === undefined) return [];
  if (!Array.isArray(identifiers)) fail('identifier-invalid', 'identifier must be an array', path);
  const values: string[] = [];
  (identifiers as unknown[]).forEach((identifier, i) => {
    if (!isObject(identifier)) fail('identifier-invalid', 'identifier must be an object', `${path}[${i}]`);
    const value = optionalString(identifier.value, `${path}[${i}].value`);
    if (value && keep(identifier)) values.push(value);
  });
  return values;
}

function optionalString(value: unknown, expression: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') fail('value-invalid', 'expected a string', expression);
  const trimmed = (value as string).trim();
  return trimmed || undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The latest calendar date anywhere on Earth now (UTC+14): a birth date after it is in the future everywhere. */
function latestTodayOnEarth(): string {
  return new Date(Date.now() + 14 * 3_600_000).toISOString().slice(0, 10);
}

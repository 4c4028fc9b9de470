import { normalizeIdentifiers, normalizePerson } from './normalize.js';
import type { NormalizedPerson, PersonFields } from './record.js';

/**
 * A member's stored match profile: `normalizePerson` of their demographics, identifiers left out (those come
 * from coverage rows that change on their own). Bump the version whenever normalisation changes: profiles of
 * another version are ignored and recomputed from the demographics.
 */
export const MATCH_PROFILE_VERSION = 2;

export type MatchProfile = Omit<NormalizedPerson, 'identifiers'> & { v: number };

export function matchProfile(fields: PersonFields): MatchProfile {
  const { identifiers: _identifiers, ...person } = normalizePerson({ ...fields, identifiers: [] });
  return { ...person, v: MATCH_PROFILE_VERSION };
}

/**
 * The stored form of a profile (`member_match_profiles.profile`, migration 0021): its fields in a fixed order,
 * separated by the ASCII unit separator, a list's items by the record separator, a missing value empty, the
 * version first. Every candidate of every request is one of these, read and decoded: as text it costs
 * Postgres and Node a fraction of what the same profile costs as `jsonb` (docs/benchmarks.md), and the narrow
 * rows keep the million profiles of a large index in a few hundred megabytes of cache.
 *
 * The order is the migration's too (it converts the `jsonb` profiles of earlier versions): change both or
 * neither. A separator inside a value (normalised values are letters, digits, spaces and an e-mail address's
 * punctuation, so only a hostile roster could hold one) is replaced by U+FFFD: that value then agrees with
 * nothing, which costs a match weight, never a false match.
 */
const FIELD = '\x1f';
const ITEM = '\x1e';
const STRING_FIELDS = ['given', 'family', 'suffix', 'birthDate', 'street', 'zip5', 'city', 'phone', 'email'] as const;
const LIST_FIELDS = ['givenCanonical', 'givenPhonetic', 'middle', 'familyParts', 'familyPhonetic'] as const;
/** Field positions after the version: every string field, then `sex`, then every list. */
const STORED_PROFILE_FIELDS = [...STRING_FIELDS, 'sex', ...LIST_FIELDS] as const;

const clean = (value: string | undefined): string =>
  value === undefined ? '' : value.includes(FIELD) || value.includes(ITEM) ? value.replaceAll(FIELD, '\uFFFD').replaceAll(ITEM, '\uFFFD') : value;

export function encodeMatchProfile(profile: MatchProfile): string {
  const parts: string[] = [String(profile.v)];
  for (const field of STRING_FIELDS) parts.push(clean(profile[field]));
  parts.push(profile.sex ?? '');
  for (const field of LIST_FIELDS) parts.push(profile[field].map(clean).join(ITEM));
  return parts.join(FIELD);
}

/** How a stored profile of this version begins (the candidate lookup tests for it in SQL). */
export const STORED_PROFILE_PREFIX = `${MATCH_PROFILE_VERSION}${FIELD}`;

/** The stored profile as a person, when it is of this version (else undefined: the caller normalises afresh). */
export function decodeMatchProfile(stored: string, identifiers: string[]): NormalizedPerson | undefined {
  if (!stored.startsWith(STORED_PROFILE_PREFIX)) return undefined;
  const f = stored.split(FIELD);
  if (f.length !== 1 + STORED_PROFILE_FIELDS.length) return undefined;
  // Module-level helpers, not closures: this runs for every candidate of every request, and the dev runner
  // (tsx) wraps every closure it creates in a naming call, which cost more than the split.
  const sex = f[10];
  return {
    given: present(f[1]!),
    family: present(f[2]!),
    suffix: present(f[3]!),
    birthDate: present(f[4]!),
    street: present(f[5]!),
    zip5: present(f[6]!),
    city: present(f[7]!),
    phone: present(f[8]!),
    email: present(f[9]!),
    sex: sex === 'male' || sex === 'female' ? sex : undefined,
    givenCanonical: items(f[11]!),
    givenPhonetic: items(f[12]!),
    middle: items(f[13]!),
    familyParts: items(f[14]!),
    familyPhonetic: items(f[15]!),
    identifiers,
  };
}

function present(value: string): string | undefined {
  return value === '' ? undefined : value;
}

function items(value: string): string[] {
  return value === '' ? [] : value.split(ITEM);
}

/** The stored profile when it is current, else a fresh normalisation; identifiers normalised either way. */
export function personFromProfile(stored: string | null | undefined, fields: PersonFields): NormalizedPerson {
  // Identifiers alone: a full normalisation per candidate would cost more than scoring it.
  const identifiers = normalizeIdentifiers(fields.identifiers);
  const decoded = stored ? decodeMatchProfile(stored, identifiers) : undefined;
  return decoded ?? { ...normalizePerson({ ...fields, identifiers: [] }), identifiers };
}

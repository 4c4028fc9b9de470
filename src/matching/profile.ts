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
export const STORED_PROFILE_FIELDS = [...STRING_FIELDS, 'sex', ...LIST_FIELDS] as const;

const clean = (value: string | undefined): string =>
  value === undefined ? '' : value.includes(FIELD) || value.includes(ITEM) ? value.replaceAll(FIELD, '\uFFFD').replaceAll(ITEM, '\uFFFD') : value;

export function encodeMatchProfile(profile: MatchProfile): string {
  const parts: string[] = [String(profile.v)];
  for (const field of STRING_FIELDS) parts.push(clean(profile[field]));
  parts.push(profile.sex ?? '');
  for (const field of LIST_FIELDS) parts.push(profile[field].map(clean).join(ITEM));
  return parts.join(FIELD);
}

const VERSION_PREFIX = `${MATCH_PROFILE_VERSION}${FIELD}`;

/** The stored profile as a person, when it is of this version (else undefined: the caller normalises afresh). */
export function decodeMatchProfile(stored: string, identifiers: string[]): NormalizedPerson | undefined {
  if (!stored.startsWith(VERSION_PREFIX)) return undefined;
  const f = stored.split(FIELD);
  if (f.length !== 1 + STORED_PROFILE_FIELDS.length) return undefined;
  const text = (i: number): string | undefined => (f[i] === '' ? undefined : f[i]);
  const list = (i: number): string[] => (f[i] === '' ? [] : f[i]!.split(ITEM));
  const sex = f[10];
  return {
    given: text(1),
    family: text(2),
    suffix: text(3),
    birthDate: text(4),
    street: text(5),
    zip5: text(6),
    city: text(7),
    phone: text(8),
    email: text(9),
    sex: sex === 'male' || sex === 'female' ? sex : undefined,
    givenCanonical: list(11),
    givenPhonetic: list(12),
    middle: list(13),
    familyParts: list(14),
    familyPhonetic: list(15),
    identifiers,
  };
}

/** The stored profile when it is current, else a fresh normalisation; identifiers normalised either way. */
export function personFromProfile(stored: string | null | undefined, fields: PersonFields): NormalizedPerson {
  // Identifiers alone: a full normalisation per candidate would cost more than scoring it.
  const identifiers = normalizeIdentifiers(fields.identifiers);
  const decoded = stored ? decodeMatchProfile(stored, identifiers) : undefined;
  return decoded ?? { ...normalizePerson({ ...fields, identifiers: [] }), identifiers };
}

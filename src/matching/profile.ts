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

/** The stored profile when it is current, else a fresh normalisation; identifiers normalised either way. */
export function personFromProfile(stored: unknown, fields: PersonFields): NormalizedPerson {
  // Identifiers alone: a full normalisation per candidate would cost more than scoring it.
  const identifiers = normalizeIdentifiers(fields.identifiers);
  if (stored && typeof stored === 'object' && (stored as MatchProfile).v === MATCH_PROFILE_VERSION) {
    const { v: _v, ...person } = stored as MatchProfile;
    return { ...person, identifiers };
  }
  return { ...normalizePerson({ ...fields, identifiers: [] }), identifiers };
}

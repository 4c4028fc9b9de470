/**
 * Field comparators of the Fellegi–Sunter matcher. Each takes two `NormalizedPerson`s (both built by
 * `normalizePerson`, which precomputes keys, nickname sets and phonetic codes) and returns the first level of
 * its list in `record.ts` that applies, or `missing` when either side lacks the value. Every comparator is
 * symmetric: compare(a, b) = compare(b, a).
 */
import jaroWinklerSimilarity from 'talisman/metrics/jaro-winkler.js';
import { canonicalSetsIntersect } from './nicknames.js';
import type {
  AddressLevel,
  BirthDateLevel,
  ComparisonVector,
  ExactLevel,
  FamilyLevel,
  GivenLevel,
  NormalizedPerson,
  SexLevel,
  SuffixLevel,
} from './record.js';

/** Jaro–Winkler similarity threshold of the `jw-high` level. */
export const JW_HIGH = 0.92;

/**
 * Jaro–Winkler similarity (talisman; prefix scale 0.1, boost threshold 0.7) in [0, 1]. The arguments are put
 * in a fixed order first, so the result is symmetric even where Jaro's greedy matching is not.
 */
export function jaroWinkler(a: string, b: string): number {
  return a <= b ? jaroWinklerSimilarity(a, b) : jaroWinklerSimilarity(b, a);
}

function intersects(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === 0 || b.length === 0) return false;
  for (const x of a) if (b.includes(x)) return true;
  return false;
}

export function compareGiven(a: NormalizedPerson, b: NormalizedPerson): GivenLevel {
  const x = a.given;
  const y = b.given;
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  const bothNames = x.length > 1 && y.length > 1; // a single letter is an initial: only `initial` applies
  if (bothNames && canonicalSetsIntersect(a.givenCanonical, b.givenCanonical)) return 'nickname';
  if (bothNames && jaroWinkler(x, y) >= JW_HIGH) return 'jw-high';
  if (x.length >= 3 && y.length >= 3 && oneEditApart(x, y)) return 'one-edit';
  if (bothNames && intersects(a.givenPhonetic, b.givenPhonetic)) return 'phonetic';
  if (x === b.middle[0] || y === a.middle[0] || (x === b.family && y === a.family)) return 'swapped';
  if ((x.length === 1 && y.startsWith(x)) || (y.length === 1 && x.startsWith(y))) return 'initial';
  return 'different';
}

export function compareFamily(a: NormalizedPerson, b: NormalizedPerson): FamilyLevel {
  const x = a.family;
  const y = b.family;
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  if (intersects(a.familyParts, b.familyParts) || a.familyParts.includes(y) || b.familyParts.includes(x)) return 'part';
  if (jaroWinkler(x, y) >= JW_HIGH) return 'jw-high';
  if (x.length >= 3 && y.length >= 3 && oneEditApart(x, y)) return 'one-edit';
  if (intersects(a.familyPhonetic, b.familyPhonetic)) return 'phonetic';
  return 'different';
}

/**
 * Damerau–Levenshtein distance exactly 1 (optimal string alignment): one insertion, deletion, substitution,
 * or transposition of adjacent letters. Linear: walks the common prefix and compares the rest.
 */
export function oneEditApart(x: string, y: string): boolean {
  if (x === y || Math.abs(x.length - y.length) > 1) return false;
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  if (x.length === y.length) {
    if (x.slice(i + 1) === y.slice(i + 1)) return true; // substitution
    return x[i] === y[i + 1] && x[i + 1] === y[i] && x.slice(i + 2) === y.slice(i + 2); // transposition
  }
  return x.length > y.length ? x.slice(i + 1) === y.slice(i) : x.slice(i) === y.slice(i + 1); // deletion / insertion
}

/** The one position at which two equal-length strings differ, or -1 (none, several, or unequal lengths). */
function onlyDifference(x: string, y: string): number {
  if (x.length !== y.length) return -1;
  let at = -1;
  for (let i = 0; i < x.length; i++) {
    if (x.charCodeAt(i) !== y.charCodeAt(i)) {
      if (at !== -1) return -1;
      at = i;
    }
  }
  return at;
}

/** `YYYY-MM-DD`: positions 0–2 are the century and decade. A typo there moves a date by 10+ years. */
const FIRST_NON_DECADE_POSITION = 3;

export function compareBirthDate(a: NormalizedPerson, b: NormalizedPerson): BirthDateLevel {
  const x = a.birthDate;
  const y = b.birthDate;
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  // Day and month exchanged. Both dates are valid (normalizePerson keeps only valid ISO dates) and differ, so
  // comparing the parts is exactly swapDayMonth(x) === y, without parsing either date for every candidate.
  if (x.slice(0, 4) === y.slice(0, 4) && x.slice(5, 7) === y.slice(8, 10) && x.slice(8, 10) === y.slice(5, 7)) return 'transposed';
  // Both dates are valid already: normalizePerson only keeps valid ISO dates.
  const at = onlyDifference(x, y);
  if (at >= FIRST_NON_DECADE_POSITION) return 'one-digit';
  if (at >= 0) return 'decade-digit';
  if (x.slice(4) === y.slice(4) && Math.abs(Number(x.slice(0, 4)) - Number(y.slice(0, 4))) === 1) return 'year-off-by-one';
  return 'different';
}

export function compareSex(a: NormalizedPerson, b: NormalizedPerson): SexLevel {
  if (!a.sex || !b.sex) return 'missing';
  return a.sex === b.sex ? 'agree' : 'different';
}

export function compareSuffix(a: NormalizedPerson, b: NormalizedPerson): SuffixLevel {
  if (!a.suffix || !b.suffix) return 'missing';
  return a.suffix === b.suffix ? 'agree' : 'different';
}

/**
 * Address levels hang on the ZIP: with a zip5 on both sides, street-and-zip / zip / different; when either
 * side has no zip5 the address is `missing` (a street alone, without its ZIP, cannot reach any agreeing level,
 * and calling it `different` would penalise a record for an absent ZIP).
 */
export function compareAddress(a: NormalizedPerson, b: NormalizedPerson): AddressLevel {
  if (!a.zip5 || !b.zip5) return 'missing';
  if (a.zip5 !== b.zip5) return 'different';
  if (a.street && a.street === b.street) return 'street-and-zip';
  return 'zip';
}

/** Equal numbers, or a seven-digit local number equal to the last seven digits of a ten-digit one. */
export function comparePhone(a: NormalizedPerson, b: NormalizedPerson): ExactLevel {
  const x = a.phone;
  const y = b.phone;
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  if ((x.length === 7 && y.length === 10 && y.endsWith(x)) || (y.length === 7 && x.length === 10 && x.endsWith(y))) return 'exact';
  return 'different';
}

export function compareEmail(a: NormalizedPerson, b: NormalizedPerson): ExactLevel {
  if (!a.email || !b.email) return 'missing';
  return a.email === b.email ? 'exact' : 'different';
}

export function compareIdentifiers(a: NormalizedPerson, b: NormalizedPerson): ExactLevel {
  if (a.identifiers.length === 0 || b.identifiers.length === 0) return 'missing';
  return intersects(a.identifiers, b.identifiers) ? 'exact' : 'different';
}

export function compareRecords(a: NormalizedPerson, b: NormalizedPerson): ComparisonVector {
  return {
    given: compareGiven(a, b),
    family: compareFamily(a, b),
    birthDate: compareBirthDate(a, b),
    sex: compareSex(a, b),
    suffix: compareSuffix(a, b),
    address: compareAddress(a, b),
    phone: comparePhone(a, b),
    email: compareEmail(a, b),
    identifier: compareIdentifiers(a, b),
  };
}

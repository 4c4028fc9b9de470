import { canonicalSetsIntersect } from './nicknames.js';
import { FIRST_NON_DECADE_POSITION, intersects, jaroWinkler, JW_HIGH, oneEditApart, onlyDifference } from './compare.js';
import type { NormalizedPerson } from './record.js';

/**
 * Each field's comparison, declared once, as Splink declares them: its levels, best first, each with what it
 * means, and the comparator that answers the first level that applies (`missing` when either side lacks the
 * value: it neither helps nor hurts a score). The level tables the model, training and evaluation use
 * (`FIELD_LEVELS`, `ComparisonVector`) derive from these declarations, so a field changes in one place. Every
 * comparator takes two people built by `normalizePerson` and is symmetric: compare(a, b) = compare(b, a).
 */
export interface Comparison<L extends string> {
  /** Level → what it means, in order, best first. */
  levels: { readonly [K in L]: string };
  compare(a: NormalizedPerson, b: NormalizedPerson): L;
}

function comparison<const L extends string>(declared: Comparison<L>): Comparison<L> & { order: readonly L[] } {
  return { ...declared, order: Object.keys(declared.levels) as L[] };
}

const given = comparison({
  levels: {
    exact: 'the same first given name',
    nickname: 'forms of one name in the nickname table (William, Bill)',
    'jw-high': `Jaro–Winkler similarity of at least ${JW_HIGH}`,
    'one-edit': 'one insertion, deletion, substitution or adjacent transposition apart (3+ letters each)',
    phonetic: 'a Double Metaphone code in common',
    swapped: "one's first name is the other's middle name, or given and family names exchanged",
    initial: 'an initial that fits the other name',
    different: 'none of the above',
    missing: 'either side has no given name',
  },
  compare(a, b) {
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
  },
});

const family = comparison({
  levels: {
    exact: 'the same family name',
    part: 'a part of a compound or hyphenated name in common (García López, García)',
    'jw-high': `Jaro–Winkler similarity of at least ${JW_HIGH}`,
    'one-edit': 'one insertion, deletion, substitution or adjacent transposition apart (3+ letters each)',
    phonetic: 'a Double Metaphone code in common',
    different: 'none of the above',
    missing: 'either side has no family name',
  },
  compare(a, b) {
    const x = a.family;
    const y = b.family;
    if (!x || !y) return 'missing';
    if (x === y) return 'exact';
    if (intersects(a.familyParts, b.familyParts) || a.familyParts.includes(y) || b.familyParts.includes(x)) return 'part';
    if (jaroWinkler(x, y) >= JW_HIGH) return 'jw-high';
    if (x.length >= 3 && y.length >= 3 && oneEditApart(x, y)) return 'one-edit';
    if (intersects(a.familyPhonetic, b.familyPhonetic)) return 'phonetic';
    return 'different';
  },
});

const birthDate = comparison({
  levels: {
    exact: 'the same date',
    transposed: 'day and month exchanged',
    'one-digit': 'one digit differs in the day, the month or the last digit of the year',
    'decade-digit': 'one digit of the century or decade differs (10+ years: a typo, or a Jr/Sr pair)',
    'year-off-by-one': 'same day and month, years one apart',
    different: 'none of the above',
    missing: 'either side has no valid birth date',
  },
  compare(a, b) {
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
  },
});

const sex = comparison({
  levels: { agree: 'the same administrative sex', different: 'different', missing: 'either side unknown' },
  compare(a, b) {
    if (!a.sex || !b.sex) return 'missing';
    return a.sex === b.sex ? 'agree' : 'different';
  },
});

const suffix = comparison({
  levels: { agree: 'the same generational suffix (Jr, Sr, III)', different: 'different suffixes', missing: 'either side has none' },
  compare(a, b) {
    if (!a.suffix || !b.suffix) return 'missing';
    return a.suffix === b.suffix ? 'agree' : 'different';
  },
});

/**
 * Address levels hang on the ZIP: with a zip5 on both sides, street-and-zip / zip / different; when either
 * side has no zip5 the address is `missing` (a street alone, without its ZIP, cannot reach any agreeing level,
 * and calling it `different` would penalise a record for an absent ZIP).
 */
const address = comparison({
  levels: { 'street-and-zip': 'the same street line and ZIP', zip: 'the same ZIP', different: 'different ZIPs', missing: 'either side has no ZIP' },
  compare(a, b) {
    if (!a.zip5 || !b.zip5) return 'missing';
    if (a.zip5 !== b.zip5) return 'different';
    if (a.street && a.street === b.street) return 'street-and-zip';
    return 'zip';
  },
});

const phone = comparison({
  levels: {
    exact: 'the same number, or a seven-digit local number equal to the end of a ten-digit one',
    different: 'different numbers',
    missing: 'either side has none',
  },
  compare(a, b) {
    const x = a.phone;
    const y = b.phone;
    if (!x || !y) return 'missing';
    if (x === y) return 'exact';
    if ((x.length === 7 && y.length === 10 && y.endsWith(x)) || (y.length === 7 && x.length === 10 && x.endsWith(y))) return 'exact';
    return 'different';
  },
});

const email = comparison({
  levels: { exact: 'the same address', different: 'different addresses', missing: 'either side has none' },
  compare(a, b) {
    if (!a.email || !b.email) return 'missing';
    return a.email === b.email ? 'exact' : 'different';
  },
});

/** The card: overridden by the candidate lookup's verdict (see decide.ts), which reaches coverages too. */
const identifier = comparison({
  levels: { exact: 'an identifier value in common', different: 'no identifier in common', missing: 'either side has none' },
  compare(a, b) {
    if (a.identifiers.length === 0 || b.identifiers.length === 0) return 'missing';
    return intersects(a.identifiers, b.identifiers) ? 'exact' : 'different';
  },
});

export const COMPARISONS = { given, family, birthDate, sex, suffix, address, phone, email, identifier } as const;

export type Field = keyof typeof COMPARISONS;
export type LevelOf<F extends Field> = ReturnType<(typeof COMPARISONS)[F]['compare']>;
/** One level per field: a pair of people as the model scores them. */
export type ComparisonVector = { [F in Field]: LevelOf<F> };
export type GivenLevel = LevelOf<'given'>;
export type FamilyLevel = LevelOf<'family'>;
export type BirthDateLevel = LevelOf<'birthDate'>;
export type AddressLevel = LevelOf<'address'>;

export const FIELDS = Object.keys(COMPARISONS) as Field[];
/** Each field's levels, best first: derived from the declarations above. */
export const FIELD_LEVELS = Object.fromEntries(FIELDS.map((field) => [field, COMPARISONS[field].order])) as { [F in Field]: readonly LevelOf<F>[] };

export const compareGiven = given.compare;
export const compareFamily = family.compare;
export const compareBirthDate = birthDate.compare;
export const compareSex = sex.compare;
export const compareSuffix = suffix.compare;
export const compareAddress = address.compare;
export const comparePhone = phone.compare;
export const compareEmail = email.compare;
export const compareIdentifiers = identifier.compare;

/** Every field compared: written out rather than looped, since it runs for every candidate of every query. */
export function compareRecords(a: NormalizedPerson, b: NormalizedPerson): ComparisonVector {
  return {
    given: given.compare(a, b),
    family: family.compare(a, b),
    birthDate: birthDate.compare(a, b),
    sex: sex.compare(a, b),
    suffix: suffix.compare(a, b),
    address: address.compare(a, b),
    phone: phone.compare(a, b),
    email: email.compare(a, b),
    identifier: identifier.compare(a, b),
  };
}

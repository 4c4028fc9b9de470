import { canonicalSetsIntersect } from './nicknames.js';
import { FIRST_NON_DECADE_POSITION, intersects, jaroWinkler, JW_HIGH, JW_SIMILAR, oneEditApart, onlyDifference, adjacentSwap, withinTwoEdits } from './compare.js';
import type { NormalizedPerson } from './record.js';
import { houseNumber } from './normalize.js';

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

/** A name alike another: the same, or Jaro–Winkler ≥ JW_HIGH. */
function alike(x: string | undefined, y: string | undefined): boolean {
  return !!x && !!y && (x === y || jaroWinkler(x, y) >= JW_HIGH);
}

/** Given and family names written in each other's places, allowing a slip in either. */
function namesExchanged(a: NormalizedPerson, b: NormalizedPerson): boolean {
  return alike(a.given, b.family) && alike(a.family, b.given);
}

/** Further apart than a typo, closer than chance: JW ≥ JW_SIMILAR, or two edits in names of 5+ letters. */
function similarNames(x: string, y: string): boolean {
  return jaroWinkler(x, y) >= JW_SIMILAR || (x.length >= 5 && y.length >= 5 && withinTwoEdits(x, y));
}

const given = comparison({
  levels: {
    exact: 'the same first given name',
    nickname: 'forms of one name in the nickname table (William, Bill)',
    'jw-high': `Jaro–Winkler similarity of at least ${JW_HIGH}`,
    'one-edit': 'one insertion, deletion, substitution or adjacent transposition apart, the first letter kept or transposed (3+ letters each; Eva/Ava and Ella/Bella rhyme, as the names of twins do)',
    phonetic: 'a Double Metaphone code in common',
    similar: `Jaro–Winkler similarity of at least ${JW_SIMILAR}, or two edits apart (5+ letters each)`,
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
    if (x.length >= 3 && y.length >= 3 && oneEditApart(x, y) && (x[0] === y[0] || (x[0] === y[1] && x[1] === y[0]))) return 'one-edit';
    if (bothNames && intersects(a.givenPhonetic, b.givenPhonetic)) return 'phonetic';
    if (bothNames && similarNames(x, y)) return 'similar';
    if (x === b.middle[0] || y === a.middle[0] || namesExchanged(a, b)) return 'swapped';
    if ((x.length === 1 && y.startsWith(x)) || (y.length === 1 && x.startsWith(y))) return 'initial';
    return 'different';
  },
});

/**
 * Middle names tell twins apart where first names alone may not (rhyming or nickname-related first names). An
 * initial agrees with a name it starts; `missing` when either side has none, which is usual.
 */
const middle = comparison({
  levels: {
    exact: 'the same first middle name',
    initial: 'an initial that fits the other middle name',
    different: 'different middle names',
    missing: 'either side has no middle name',
  },
  compare(a, b) {
    const x = a.middle[0];
    const y = b.middle[0];
    if (!x || !y) return 'missing';
    if (x === y) return 'exact';
    if ((x.length === 1 || y.length === 1) && x[0] === y[0]) return 'initial';
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
    exchanged: "given and family names exchanged (each alike the other's)",
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
    if (namesExchanged(a, b)) return 'exchanged';
    return 'different';
  },
});

const birthDate = comparison({
  levels: {
    exact: 'the same date',
    transposed: 'day and month exchanged',
    'one-digit': 'one digit differs in the day, the month or the last digit of the year',
    'ten-years': 'the decade digit one off, all else equal: exactly ten years apart (a slip: no parent is ten years older than their child)',
    'decade-digit': 'one digit of the century or decade differs by more (20+ years: a typo, or a Jr/Sr pair)',
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
    if (at === FIRST_NON_DECADE_POSITION - 1 && Math.abs(x.charCodeAt(at) - y.charCodeAt(at)) === 1) return 'ten-years';
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
 * Two street lines that are the same but for a clerk's slip: the same house number (or neither has one) and
 * Jaro–Winkler ≥ STREET_NEAR over the whole line (`27 MARKELL P LACE` / `27 MARKELL PL`). A different house
 * number on the same street is a neighbour, never a near street.
 */
const STREET_NEAR = 0.9;
function streetsAlike(x: string, y: string): boolean {
  return x === y || (houseNumber(x) === houseNumber(y) && jaroWinkler(x, y) >= STREET_NEAR);
}

/** Postcodes of the same length one digit apart (a slip, or the next delivery area). */
function postcodesNear(x: string, y: string): boolean {
  return onlyDifference(x, y) >= 0;
}

/**
 * Address levels, best first, from the parts both sides have: the street line (exact, or alike: same house
 * number and nearly the same words), the postcode (exact or one digit apart) and the town. A street alike
 * without an agreeing postcode still says "same home" (a mistyped or missing postcode); a postcode or a town
 * alone says "same area". `missing` only when the two sides share no part to compare, so an absent postcode
 * is never counted against a record.
 */
const address = comparison({
  levels: {
    'street-and-zip': 'the same street line and postcode',
    'street-near-and-zip': 'the same postcode and house number, street lines nearly the same (Jaro–Winkler ≥ 0.9)',
    street: 'the same or nearly the same street line and house number; postcodes differ or one is absent',
    zip: 'the same postcode, different streets',
    locality: 'the same town, postcodes differ or one is absent',
    'zip-near': 'postcodes one digit apart, different streets and towns',
    different: 'nothing in common',
    missing: 'no street line, postcode or town on both sides',
  },
  compare(a, b) {
    const bothZip = !!a.zip5 && !!b.zip5;
    const bothStreet = !!a.street && !!b.street;
    const bothCity = !!a.city && !!b.city;
    if (!bothZip && !bothStreet && !bothCity) return 'missing';
    const sameZip = bothZip && a.zip5 === b.zip5;
    if (bothStreet) {
      if (sameZip && a.street === b.street) return 'street-and-zip';
      if (streetsAlike(a.street!, b.street!)) return sameZip ? 'street-near-and-zip' : 'street';
    }
    if (sameZip) return 'zip';
    if (bothCity && a.city === b.city) return 'locality';
    if (bothZip && postcodesNear(a.zip5!, b.zip5!)) return 'zip-near';
    return 'different';
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

/**
 * The card. Two people sharing a value is `household` here; the candidate lookup, which knows how many members
 * a value reaches and through which column, refines it to `personal` when the value is this member's own
 * member number, held by no one else and no one's subscriber id (member-index.ts, decide.ts). A value
 * one digit or one adjacent swap away is a clerk's slip — or the next number in a series: twins are often
 * issued consecutive ids — so near levels add weight but never confirm an identity on their own.
 */
const identifier = comparison({
  levels: {
    personal: "the member's own member number, held by no other member and no one's subscriber id",
    household: 'a card value in common that several members share (a subscriber or household card)',
    'one-substitution': 'a card value one character away (one substituted)',
    transposition: 'a card value with two adjacent characters swapped',
    different: 'no card value in common or near',
    missing: 'either side has none',
  },
  // `personal` is never returned here: only the lookup can tell it (see above).
  compare(a, b): 'personal' | 'household' | 'one-substitution' | 'transposition' | 'different' | 'missing' {
    if (a.identifiers.length === 0 || b.identifiers.length === 0) return 'missing';
    if (intersects(a.identifiers, b.identifiers)) return 'household';
    return nearIdentifier(a.identifiers, b.identifiers);
  },
});

/** Identifier values too short to tell a typo from a different id (a 3-character id is one edit from hundreds). */
const MIN_NEAR_IDENTIFIER_LENGTH = 6;

function nearIdentifier(xs: readonly string[], ys: readonly string[]): 'one-substitution' | 'transposition' | 'different' {
  let transposed = false;
  for (const x of xs) {
    if (x.length < MIN_NEAR_IDENTIFIER_LENGTH) continue;
    for (const y of ys) {
      if (y.length !== x.length) continue;
      if (onlyDifference(x, y) >= 0) return 'one-substitution';
      if (!transposed && adjacentSwap(x, y)) transposed = true;
    }
  }
  return transposed ? 'transposition' : 'different';
}

export const COMPARISONS = { given, middle, family, birthDate, sex, suffix, address, phone, email, identifier } as const;

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
    middle: middle.compare(a, b),
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

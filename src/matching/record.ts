/**
 * The shapes the probabilistic matcher works on. Both sides of a comparison — a member from the index and the
 * person a partner describes — are normalised into a `NormalizedPerson` by the same code, then compared field
 * by field into a `ComparisonVector` of discrete levels, which the Fellegi–Sunter model turns into weights.
 */

/** Demographics as offered or stored, before normalisation. Every field may be missing. */
export interface PersonFields {
  given?: string | undefined;
  /** Further given names (middle names), space separated. */
  middle?: string | undefined;
  family?: string | undefined;
  suffix?: string | undefined;
  /** `YYYY-MM-DD` as written; may be a placeholder or invalid. */
  birthDate?: string | undefined;
  /** FHIR administrative gender or a roster code (M/F/U…). */
  sex?: string | undefined;
  addressLine?: string | undefined;
  city?: string | undefined;
  state?: string | undefined;
  postalCode?: string | undefined;
  phone?: string | undefined;
  email?: string | undefined;
  /** Identifier values on the card or in the index: member ids, subscriber ids, coverage ids. */
  identifiers?: string[] | undefined;
}

/** Normalised demographics. `undefined` means missing *or a placeholder*: neither helps nor hurts a score. */
export interface NormalizedPerson {
  /** First given name, folded (NFKD, marks stripped, upper case, letters only). */
  given: string | undefined;
  /** Canonical forms of the first given name through the nickname table (itself included), sorted. */
  givenCanonical: string[];
  /** Double Metaphone codes (primary and alternate, de-duplicated) of the first given name. */
  givenPhonetic: string[];
  /** Folded middle names, in order. */
  middle: string[];
  /** Whole family name folded to letters only (`O'Brien-Núñez` → `OBRIENNUNEZ`). */
  family: string | undefined;
  /** Parts of a hyphenated or compound family name (`GARCIA LOPEZ` → [`GARCIA`,`LOPEZ`]), folded. */
  familyParts: string[];
  familyPhonetic: string[];
  /** JR, SR, II, III, IV… */
  suffix: string | undefined;
  /** Valid ISO date, not a placeholder. */
  birthDate: string | undefined;
  sex: 'male' | 'female' | undefined;
  /** Street line with USPS suffix/unit abbreviations, upper case, single spaces. */
  street: string | undefined;
  zip5: string | undefined;
  /** Ten digits (US, leading 1 removed); placeholders like 0000000000 removed. */
  phone: string | undefined;
  email: string | undefined;
  identifiers: string[];
}

export const GIVEN_LEVELS = ['exact', 'nickname', 'jw-high', 'one-edit', 'phonetic', 'swapped', 'initial', 'different', 'missing'] as const;
export const FAMILY_LEVELS = ['exact', 'part', 'jw-high', 'one-edit', 'phonetic', 'different', 'missing'] as const;
/**
 * Names `one-edit`: one insertion, deletion, substitution or adjacent transposition apart (a typo that
 * Jaro–Winkler scores below its band, common in short names). Birth date `one-digit`: one digit differs in the day, month or the
 * year's last digit; `decade-digit`: one digit of the century or decade (10+ years: a typo, or a Jr/Sr pair
 * born on the same day and month, so it never confirms an identity on its own).
 */
export const BIRTH_DATE_LEVELS = ['exact', 'transposed', 'one-digit', 'decade-digit', 'year-off-by-one', 'different', 'missing'] as const;
export const SEX_LEVELS = ['agree', 'different', 'missing'] as const;
export const SUFFIX_LEVELS = ['agree', 'different', 'missing'] as const;
export const ADDRESS_LEVELS = ['street-and-zip', 'zip', 'different', 'missing'] as const;
export const EXACT_LEVELS = ['exact', 'different', 'missing'] as const;

export type GivenLevel = (typeof GIVEN_LEVELS)[number];
export type FamilyLevel = (typeof FAMILY_LEVELS)[number];
export type BirthDateLevel = (typeof BIRTH_DATE_LEVELS)[number];
export type SexLevel = (typeof SEX_LEVELS)[number];
export type SuffixLevel = (typeof SUFFIX_LEVELS)[number];
export type AddressLevel = (typeof ADDRESS_LEVELS)[number];
export type ExactLevel = (typeof EXACT_LEVELS)[number];

/** One level per field, highest applicable level first in each list above. */
export interface ComparisonVector {
  given: GivenLevel;
  family: FamilyLevel;
  birthDate: BirthDateLevel;
  sex: SexLevel;
  suffix: SuffixLevel;
  address: AddressLevel;
  phone: ExactLevel;
  email: ExactLevel;
  identifier: ExactLevel;
}

export const FIELD_LEVELS = {
  given: GIVEN_LEVELS,
  family: FAMILY_LEVELS,
  birthDate: BIRTH_DATE_LEVELS,
  sex: SEX_LEVELS,
  suffix: SUFFIX_LEVELS,
  address: ADDRESS_LEVELS,
  phone: EXACT_LEVELS,
  email: EXACT_LEVELS,
  identifier: EXACT_LEVELS,
} as const;

export type Field = keyof ComparisonVector;
export const FIELDS = Object.keys(FIELD_LEVELS) as Field[];

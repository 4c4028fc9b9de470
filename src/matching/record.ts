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
  /** Town or locality, folded to letters and single spaces (`St. Kilda` → `ST KILDA`). */
  city: string | undefined;
  /** Ten digits (US, leading 1 removed); placeholders like 0000000000 removed. */
  phone: string | undefined;
  email: string | undefined;
  identifiers: string[];
}

/**
 * Normalisation shared by roster import (which stores the keys) and resolution (which compares them), so a
 * name is folded the same way on both sides.
 */
import { doubleMetaphone } from 'double-metaphone';
import { canonicalGivenNames } from './nicknames.js';
import type { NormalizedPerson, PersonFields } from './record.js';
import { DIRECTIONALS, STREET_SUFFIXES, UNIT_DESIGNATORS } from './usps-address-words.js';

/**
 * Printable ASCII: unchanged by NFKD and free of combining marks, so folding it is upper-casing it. Nearly every
 * roster value is, and skipping the Unicode work for it took a tenth of a first import's normalising time.
 */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Unicode-folds a name: NFKD, combining marks removed, upper case, letters only (spaces, hyphens and
 * apostrophes dropped), so `O'Brien-Núñez` and `OBRIEN NUNEZ` give the same key. */
export function nameKey(name: string | undefined | null): string {
  if (!name) return '';
  return foldText(name).replace(/[^A-Z]/g, '');
}

/** The key of a person's first given name: the first whitespace-separated token of the given names. */
export function givenNameKey(given: string | undefined | null): string {
  if (!given) return '';
  const first = given.normalize('NFKC').trim().split(/\s+/)[0];
  return nameKey(first);
}

const isoDate = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar date written `YYYY-MM-DD`, or undefined. Rejects 2023-02-30 and friends. */
export function parseIsoDate(text: string | undefined | null): string | undefined {
  if (!text) return undefined;
  const m = isoDate.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined;
  }
  return m[0];
}

// ---------------------------------------------------------------------------------------------------------
// Probabilistic matching: `normalizePerson` folds every field of a `PersonFields` once, so that comparison
// (run for every candidate) only compares strings and sets.
// ---------------------------------------------------------------------------------------------------------

/** NFKD, combining marks removed, upper case; everything else kept (spaces, digits, punctuation). */
export function foldText(text: string | undefined | null): string {
  if (typeof text !== 'string' || text === '') return '';
  if (PRINTABLE_ASCII.test(text)) return text.toUpperCase();
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toUpperCase();
}

/** Generational suffixes, keyed by the folded token (letters and digits only). */
const SUFFIXES: ReadonlyMap<string, string> = new Map([
  ['JR', 'JR'],
  ['JNR', 'JR'],
  ['JUNIOR', 'JR'],
  ['SR', 'SR'],
  ['SNR', 'SR'],
  ['SENIOR', 'SR'],
  ['I', 'I'],
  ['II', 'II'],
  ['III', 'III'],
  ['IV', 'IV'],
  ['V', 'V'],
  ['VI', 'VI'],
  ['1ST', 'I'],
  ['2ND', 'II'],
  ['3RD', 'III'],
  ['4TH', 'IV'],
  ['5TH', 'V'],
  ['6TH', 'VI'],
]);
/** Suffixes recognised at the end of a *name* field. Single letters (I, V) are left alone there: in a given
 * name they are initials, and a family name ending in a lone I or V is more likely a typo than a suffix. */
const NAME_TAIL_SUFFIXES = new Set(['JR', 'JNR', 'JUNIOR', 'SR', 'SNR', 'SENIOR', 'II', 'III', 'IV', 'VI', '2ND', '3RD', '4TH']);
/** `V` is accepted at the end of a family name of several words ("Smith V"). */
const FAMILY_TAIL_SUFFIXES = new Set([...NAME_TAIL_SUFFIXES, 'V']);

/** The generational suffix a suffix field holds (`Jr.` → `JR`, `3rd` → `III`), or undefined. Professional
 * suffixes (MD, PHD, ESQ) say nothing about which generation a person is and are dropped. */
export function normalizeSuffix(suffix: string | undefined | null): string | undefined {
  const key = foldText(suffix).replace(/[^A-Z0-9]/g, '');
  return SUFFIXES.get(key);
}

/** Whole-name keys that mean "no name": they carry no weight. Single letters are initials, not placeholders. */
const PLACEHOLDER_NAMES = new Set([
  'BABY',
  'BABYBOY',
  'BABYGIRL',
  'UNKNOWN',
  'UNK',
  'NONE',
  'NFN',
  'NMN',
  'FNU',
  'LNU',
  'TEST',
  'XXX',
  'NULL',
  'NOTGIVEN',
  'NOTPROVIDED',
]);

/** True for a name (whole or one token) that stands for "no name": BABY BOY, UNKNOWN, NFN, XXXX… */
export function isPlaceholderName(name: string | undefined | null): boolean {
  const key = nameKey(name);
  if (key === '') return true;
  if (PLACEHOLDER_NAMES.has(key)) return true;
  if (/^(.)\1{2,}$/.test(key)) return true; // XXX, ZZZZ, AAA
  // "Baby Boy A", "Baby Girl 2", "Baby Garcia": newborns registered before they are named.
  const first = nameKey(foldText(name).trim().split(/[\s,]+/)[0]);
  return first === 'BABY';
}

const HONORIFICS = new Set(['MR', 'MRS', 'MS', 'MISS', 'MX', 'DR']);

function isNameSeparator(ch: string): boolean {
  return ch === ',' || /\s/.test(ch);
}

/** Splits trailing generational suffixes off raw name text: `Johnson Jr.` → [`JOHNSON`, `JR`]. The text keeps
 * at least one word; of several trailing suffixes (`Smith Jr III`) the one nearest the name is kept. */
export function splitNameSuffix(
  text: string | undefined | null,
  accepted: ReadonlySet<string> = FAMILY_TAIL_SUFFIXES,
): { rest: string; suffix: string | undefined } {
  let rest = foldText(text).trim();
  let suffix: string | undefined;
  for (;;) {
    // Last word, split at the last run of spaces or commas (no backtracking regex on partner input).
    let end = rest.length;
    while (end > 0 && !isNameSeparator(rest[end - 1] as string)) end--;
    if (end === 0) break;
    const tailSuffix = tokenSuffix(rest.slice(end), accepted);
    if (!tailSuffix) break;
    let start = end;
    while (start > 0 && isNameSeparator(rest[start - 1] as string)) start--;
    const head = rest.slice(0, start);
    if (nameKey(head) === '') break;
    rest = head;
    suffix = tailSuffix;
  }
  return { rest, suffix };
}

/** Particles dropped from the *parts* of a compound family name (the whole `family` keeps them). */
const FAMILY_PARTICLES = new Set([
  'DE',
  'LA',
  'LAS',
  'LOS',
  'DEL',
  'DELA',
  'DER',
  'DEN',
  'VAN',
  'VON',
  'DA',
  'DI',
  'DO',
  'DOS',
  'DAS',
  'DU',
  'LE',
  'Y',
  'E',
]);

/** Parts of a hyphenated or compound family name: `García-López` → [`GARCIA`, `LOPEZ`], `de la Cruz` →
 * [`CRUZ`]. Particles and single letters are dropped; a name made only of them keeps its whole key. */
export function familyNameParts(family: string | undefined | null): string[] {
  const whole = nameKey(family);
  if (whole === '') return [];
  const parts = foldText(family)
    .split(/[\s\-‐‑‒–—―_/.,+&]+/)
    .map((p) => nameKey(p))
    .filter((p) => p.length > 1 && !FAMILY_PARTICLES.has(p));
  const unique = [...new Set(parts)];
  return unique.length > 0 ? unique : [whole];
}

/** Double Metaphone codes (primary, alternate) of a folded name, de-duplicated, empty codes dropped. */
export function phoneticCodes(folded: string | undefined): string[] {
  if (!folded) return [];
  const [primary, alternate] = doubleMetaphone(folded);
  return [...new Set([primary, alternate])].filter((c) => c !== '');
}

/** Birth dates that stand for "unknown" in registration systems. */
const PLACEHOLDER_DATES = new Set(['1900-01-01', '1901-01-01', '1800-01-01', '9999-12-31', '0001-01-01']);

/** A usable birth date: a valid ISO date, not a placeholder, not before 1900 and not in the future. */
export function normalizeBirthDate(text: string | undefined | null, today: string = todayIso()): string | undefined {
  const iso = parseIsoDate(typeof text === 'string' ? text : undefined);
  if (!iso || PLACEHOLDER_DATES.has(iso) || iso < '1900-01-01' || iso > today) return undefined;
  return iso;
}

function todayIso(): string {
  return new Date().toISOString().slice(0, 10);
}

/** The date with day and month swapped (`1974-12-05` → `1974-05-12`) when that is a valid date and differs;
 * undefined for an invalid input, day = month, or a day above 12. An involution where defined. */
export function swapDayMonth(iso: string | undefined | null): string | undefined {
  const valid = parseIsoDate(typeof iso === 'string' ? iso : undefined);
  if (!valid) return undefined;
  const [year, month, day] = valid.split('-') as [string, string, string];
  if (month === day) return undefined;
  return parseIsoDate(`${year}-${day}-${month}`);
}

/** male / female from FHIR administrative gender or roster codes; other, unknown, U… carry no weight. */
export function normalizeSex(text: string | undefined | null): 'male' | 'female' | undefined {
  if (typeof text !== 'string') return undefined;
  switch (text.trim().toLowerCase()) {
    case 'male':
    case 'm':
      return 'male';
    case 'female':
    case 'f':
      return 'female';
    default:
      return undefined;
  }
}

const UNIT_OUTPUTS = new Set(Object.values(UNIT_DESIGNATORS));

const ADDRESS_WORDS: ReadonlyMap<string, string> = new Map(
  Object.entries({ ...STREET_SUFFIXES, ...DIRECTIONALS, ...UNIT_DESIGNATORS }),
);

/**
 * A street line for comparison: folded, upper case, punctuation removed, USPS street suffix, directional and
 * unit abbreviations, single spaces (`123 North Main Street, Apartment 4` → `123 N MAIN ST APT 4`). `#` is a
 * unit with no designator and becomes APT unless a designator precedes it (`Apt #4` → `APT 4`). Idempotent.
 */
export function normalizeStreet(line: string | undefined | null): string | undefined {
  let text = foldText(line)
    .replace(/['’`]/g, '')
    .replace(/#/g, ' # ')
    .replace(/[^A-Z0-9#]+/g, ' ');
  text = ` ${text} `
    .replace(/ P ?O ?BOX /g, ' PO BOX ')
    .replace(/ POST OFFICE BOX /g, ' PO BOX ')
    .replace(/ POB /g, ' PO BOX ');
  const out: string[] = [];
  for (const token of text.split(' ')) {
    if (token === '') continue;
    if (token === '#') {
      const previous = out[out.length - 1];
      if (previous === undefined || !UNIT_OUTPUTS.has(previous)) out.push('APT');
      continue;
    }
    out.push(ADDRESS_WORDS.get(token) ?? token);
  }
  return out.length > 0 ? out.join(' ') : undefined;
}

/** The house number of a normalised street line: its first token when it starts with a digit (`27`, `12A`), else ''. */
export function houseNumber(street: string): string {
  const space = street.indexOf(' ');
  const first = space === -1 ? street : street.slice(0, space);
  return first !== '' && first.charCodeAt(0) >= 48 && first.charCodeAt(0) <= 57 ? first : '';
}

const DIRECTIONAL_OUTPUTS = new Set(Object.values(DIRECTIONALS));

/**
 * The first `length` letters of the street's name in a normalised street line, after the house number and any
 * directional (`123 N MAIN ST` → `MAIN`), or '' when the line has no house number or too few letters. Letters of
 * the following words count too, so a name run into its suffix (`COPLANDDRIVE`) or cut short keeps its prefix.
 */
export function streetNamePrefix(street: string, length: number): string {
  const number = houseNumber(street);
  if (number === '') return '';
  let letters = '';
  for (const token of street.slice(number.length).split(' ')) {
    if (token === '' || (letters === '' && DIRECTIONAL_OUTPUTS.has(token))) continue;
    letters += token.replace(/[^A-Z]/g, '');
    if (letters.length >= length) return letters.slice(0, length);
  }
  return '';
}

/** A town or locality for comparison: folded, letters and single spaces only (`St. Kilda` → `ST KILDA`). */
export function normalizeCity(city: string | undefined | null): string | undefined {
  const text = foldText(city).replace(/[^A-Z]+/g, ' ').trim();
  return text === '' ? undefined : text;
}

const PLACEHOLDER_POSTCODES = new Set(['00000', '99999', '0000']);

/**
 * The comparable postcode: the first five digits of a US ZIP or ZIP+4 (`62701-1234` → `62701`), or a 4-digit
 * Australian postcode as is. Placeholders (00000, 99999) and anything else → undefined. Idempotent.
 */
export function normalizeZip5(postalCode: string | undefined | null): string | undefined {
  if (typeof postalCode !== 'string') return undefined;
  const text = postalCode.trim();
  const m = /^(\d{5})(?:[-\s]?\d{4})?$/.exec(text) ?? /^(\d{4})$/.exec(text);
  const code = m?.[1];
  if (!code || PLACEHOLDER_POSTCODES.has(code)) return undefined;
  return code;
}

const PLACEHOLDER_PHONES = new Set(['1234567890', '0123456789', '9876543210', '1234567', '7654321']);

/**
 * Phone digits: ten digits (a leading 1 removed from eleven), or seven for a local number (`555-0100`).
 * An extension (`x123`, `ext. 123`) is dropped. Placeholders (one digit repeated, 1234567890…) → undefined.
 */
export function normalizePhone(phone: string | undefined | null): string | undefined {
  if (typeof phone !== 'string') return undefined;
  const withoutExtension = phone.split(/(?:x|ext\.?|extension)\s*\d/i)[0] ?? '';
  let digits = withoutExtension.replace(/\D/g, '');
  if (digits.length === 11 && digits.startsWith('1')) digits = digits.slice(1);
  if (digits.length !== 10 && digits.length !== 7) return undefined;
  if (/^(\d)\1*$/.test(digits) || PLACEHOLDER_PHONES.has(digits)) return undefined;
  return digits;
}

/** Local parts that say "no e-mail". */
const PLACEHOLDER_EMAIL_LOCALS = new Set(['none', 'noemail', 'no-email', 'no.email', 'unknown', 'na', 'n/a', 'null']);

/** An e-mail address trimmed and lower-cased; exactly one `@` with text either side and no spaces. */
export function normalizeEmail(email: string | undefined | null): string | undefined {
  if (typeof email !== 'string') return undefined;
  const text = email.trim().toLowerCase();
  const at = text.indexOf('@');
  if (at <= 0 || at === text.length - 1 || text.indexOf('@', at + 1) !== -1 || /\s/.test(text)) return undefined;
  if (PLACEHOLDER_EMAIL_LOCALS.has(text.slice(0, at))) return undefined;
  return text;
}

/** Identifier values trimmed, upper-cased, empty ones dropped, de-duplicated (first occurrence order). */
export function normalizeIdentifiers(values: readonly unknown[] | undefined | null): string[] {
  if (!Array.isArray(values)) return [];
  const out = new Set<string>();
  for (const value of values) {
    if (typeof value !== 'string') continue;
    const id = value.trim().toUpperCase();
    if (id !== '') out.add(id);
  }
  return [...out];
}

/** The generational suffix a name token spells (`JR.`, `3RD`, `III`), if any, among `accepted`. */
function tokenSuffix(raw: string, accepted: ReadonlySet<string>): string | undefined {
  const alnum = raw.replace(/[^A-Z0-9]/g, '');
  if (accepted.has(alnum)) return SUFFIXES.get(alnum);
  const letters = nameKey(raw);
  return accepted.has(letters) ? SUFFIXES.get(letters) : undefined;
}

/**
 * Given and middle names: the first token of `given` is the first given name; the rest of `given`, then
 * `middle`, are middle names. A leading honorific (Dr, Mrs) is dropped; generational suffix words among the
 * further names (`Martin Luther Jr`) become the suffix; placeholder tokens (NMN, UNKNOWN) are dropped. A
 * placeholder given name leaves the first name missing: middle names are not promoted into it.
 */
function splitGivenNames(
  given: string | undefined,
  middle: string | undefined,
): { first: string | undefined; middle: string[]; suffix: string | undefined } {
  const rawTokens = (text: string | undefined): string[] =>
    foldText(text)
      .split(/\s+/)
      .filter((t) => nameKey(t) !== '');
  const givenTokens = isPlaceholderName(given) ? [] : rawTokens(given);
  if (givenTokens.length > 1 && HONORIFICS.has(nameKey(givenTokens[0]))) givenTokens.shift();
  const [firstRaw, ...moreGiven] = givenTokens;
  const first = firstRaw === undefined || isPlaceholderName(firstRaw) ? undefined : nameKey(firstRaw);

  let suffix: string | undefined;
  const middleNames: string[] = [];
  for (const raw of [...moreGiven, ...rawTokens(middle)]) {
    const tokenAsSuffix = tokenSuffix(raw, NAME_TAIL_SUFFIXES);
    if (tokenAsSuffix) suffix ??= tokenAsSuffix;
    else if (!isPlaceholderName(raw)) middleNames.push(nameKey(raw));
  }
  return { first, middle: middleNames, suffix };
}

/** Folds a person's demographics for comparison. Never throws; missing and placeholder values → undefined. */
export function normalizePerson(fields: PersonFields): NormalizedPerson {
  const f: PersonFields = fields ?? {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

  const givenSplit = splitGivenNames(str(f.given), str(f.middle));
  const given = givenSplit.first;

  let family: string | undefined;
  let familyParts: string[] = [];
  let familySuffix: string | undefined;
  if (!isPlaceholderName(str(f.family))) {
    const split = splitNameSuffix(str(f.family), FAMILY_TAIL_SUFFIXES);
    familySuffix = split.suffix;
    const key = nameKey(split.rest);
    if (key !== '' && !isPlaceholderName(split.rest)) {
      family = key;
      familyParts = familyNameParts(split.rest);
    }
  }

  const suffixField = str(f.suffix);
  const suffix =
    suffixField !== undefined && suffixField.trim() !== ''
      ? normalizeSuffix(suffixField)
      : (familySuffix ?? givenSplit.suffix);

  return {
    given,
    givenCanonical: given ? canonicalGivenNames(given) : [],
    givenPhonetic: phoneticCodes(given),
    middle: givenSplit.middle,
    family,
    familyParts,
    familyPhonetic: phoneticCodes(family),
    suffix,
    birthDate: normalizeBirthDate(str(f.birthDate)),
    sex: normalizeSex(str(f.sex)),
    street: normalizeStreet(str(f.addressLine)),
    zip5: normalizeZip5(str(f.postalCode)),
    city: normalizeCity(str(f.city)),
    phone: normalizePhone(str(f.phone)),
    email: normalizeEmail(str(f.email)),
    identifiers: normalizeIdentifiers(f.identifiers),
  };
}

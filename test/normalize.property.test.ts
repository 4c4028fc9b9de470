import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalGivenNames } from '../src/matching/nicknames.js';
import {
  familyNameParts,
  givenNameKey,
  isPlaceholderName,
  foldText,
  nameKey,
  normalizeBirthDate,
  normalizeEmail,
  normalizeIdentifiers,
  normalizePerson,
  normalizePhone,
  normalizeSex,
  normalizeStreet,
  streetNamePrefix,
  normalizeSuffix,
  normalizeZip5,
  parseIsoDate,
  swapDayMonth,
} from '../src/matching/normalize.js';
import type { PersonFields } from '../src/matching/record.js';
import { encodeMatchProfile, matchProfile, personFromProfile } from '../src/matching/profile.js';

/** Arbitrary text: whole graphemes (combining sequences, emoji, astral characters) and raw code points. */
const anyText = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-composite' }));
/** Text that looks like what the normalisers see: names, streets, numbers, punctuation, some accents. */
const fieldish = fc.string({
  unit: fc.constantFrom(...'aAbBeEhHjJnNoOrRsStT0123456789 -.,#\'/()+@éÑüÅ'.split(''), ' Street', ' North', ' Apt', ' Jr', 'x'),
  maxLength: 30,
});
const text = fc.oneof(anyText, fieldish);
const isoDates = fc
  .date({ min: new Date('1850-01-01T00:00:00Z'), max: new Date('2100-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));

const personFields: fc.Arbitrary<PersonFields> = fc.record(
  {
    given: text,
    middle: text,
    family: text,
    suffix: text,
    birthDate: fc.oneof(isoDates, text),
    sex: fc.oneof(fc.constantFrom('male', 'female', 'other', 'unknown', 'M', 'F', 'U'), text),
    addressLine: text,
    city: text,
    state: text,
    postalCode: fc.oneof(fc.constantFrom('62701', '62701-1234', '2000', '00000'), text),
    phone: fc.oneof(fc.constantFrom('217-555-0100', '555-0100', '+1 217 555 0100'), text),
    email: fc.oneof(fc.emailAddress(), text),
    identifiers: fc.array(text, { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

describe('normalisation properties', () => {
  it('foldText takes the printable-ASCII shortcut without changing any result', () => {
    const reference = (x: string) => x.normalize('NFKD').replace(/\p{M}+/gu, '').toUpperCase();
    fc.assert(
      fc.property(fc.oneof(text, fc.string({ unit: 'grapheme-ascii' }), fc.constantFrom('O\'Brien-Núñez', 'ﬁ', 'Straße', 'Ǆ', ' a~z ')), (x) => {
        expect(foldText(x)).toBe(reference(x));
        expect(nameKey(x)).toBe(reference(x).replace(/[^A-Z]/g, ''));
      }),
    );
  });

  it('nameKey is idempotent and yields only A–Z', () => {
    fc.assert(
      fc.property(text, (x) => {
        const key = nameKey(x);
        expect(nameKey(key)).toBe(key);
        expect(key).toMatch(/^[A-Z]*$/);
      }),
      { numRuns: 500 },
    );
  });

  it('normalizePerson never throws on any string input and returns well-formed keys', () => {
    fc.assert(
      fc.property(personFields, (fields) => {
        const p = normalizePerson(fields);
        for (const key of [p.given, p.family, ...p.middle, ...p.familyParts]) {
          if (key !== undefined) expect(key).toMatch(/^[A-Z]+$/);
        }
        if (p.given) expect(p.givenCanonical).toContain(p.given);
        expect([...p.givenCanonical].sort()).toEqual(p.givenCanonical);
        if (p.birthDate) expect(parseIsoDate(p.birthDate)).toBe(p.birthDate);
        if (p.street) expect(p.street).toMatch(/^[A-Z0-9]+(?: [A-Z0-9]+)*$/);
      }),
      { numRuns: 500 },
    );
  });

  it('a stored match profile decodes to exactly the normalised person, for any input', () => {
    // The stored text (member_match_profiles) stands in for normalisation at every lookup: any difference would
    // score a candidate differently from the same member normalised afresh.
    fc.assert(
      fc.property(personFields, (fields) => {
        expect(personFromProfile(encodeMatchProfile(matchProfile(fields)), fields)).toEqual(normalizePerson(fields));
      }),
      { numRuns: 500 },
    );
  });

  it('every single normaliser accepts any string without throwing', () => {
    fc.assert(
      fc.property(anyText, (x) => {
        nameKey(x);
        givenNameKey(x);
        isPlaceholderName(x);
        familyNameParts(x);
        normalizeSuffix(x);
        normalizeBirthDate(x);
        swapDayMonth(x);
        normalizeSex(x);
        normalizeStreet(x);
        normalizeZip5(x);
        normalizePhone(x);
        normalizeEmail(x);
        normalizeIdentifiers([x]);
        canonicalGivenNames(x);
      }),
      { numRuns: 300 },
    );
  });

  it('normalising the normalised names again gives the same keys', () => {
    fc.assert(
      fc.property(personFields, (fields) => {
        const p = normalizePerson(fields);
        const again = normalizePerson({ given: p.given, middle: p.middle.join(' '), family: p.family, suffix: p.suffix });
        expect(again.family).toBe(p.family);
        expect(again.suffix).toBe(p.suffix);
        // A first name that happened to be an honorific or placeholder token may drop on re-normalisation only
        // if it was one of those words; otherwise it is stable.
        if (p.given && !isPlaceholderName(p.given)) expect(again.given).toBe(p.given);
      }),
      { numRuns: 300 },
    );
  });

  it('streetNamePrefix: the name after the house number and a directional, letters across words, or nothing', () => {
    expect(streetNamePrefix(normalizeStreet('123 North Main Street, Apt 4')!, 4)).toBe('MAIN');
    expect(streetNamePrefix(normalizeStreet('11 coplanddrive')!, 4)).toBe('COPL');
    expect(streetNamePrefix(normalizeStreet('7 Oak Ave')!, 4)).toBe('OAKA');
    expect(streetNamePrefix(normalizeStreet('PO Box 12')!, 4)).toBe('');
    expect(streetNamePrefix(normalizeStreet('12 N')!, 4)).toBe('');
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 9999 }), (x, n) => {
        const street = normalizeStreet(`${n} ${x}`);
        const prefix = street === undefined ? '' : streetNamePrefix(street, 4);
        expect(prefix === '' || /^[A-Z]{4}$/.test(prefix)).toBe(true);
        // The suffix and punctuation around the name do not change it.
        if (prefix !== '') expect(streetNamePrefix(normalizeStreet(`${n} ${x} Street.`)!, 4)).toBe(prefix);
      }),
      { numRuns: 500 },
    );
  });

  it('phone, ZIP, e-mail, street, sex and identifier normalisers are idempotent', () => {
    fc.assert(
      fc.property(text, (x) => {
        const phone = normalizePhone(x);
        if (phone !== undefined) expect(normalizePhone(phone)).toBe(phone);
        const zip = normalizeZip5(x);
        if (zip !== undefined) expect(normalizeZip5(zip)).toBe(zip);
        const email = normalizeEmail(x);
        if (email !== undefined) expect(normalizeEmail(email)).toBe(email);
        const street = normalizeStreet(x);
        if (street !== undefined) expect(normalizeStreet(street)).toBe(street);
        const sex = normalizeSex(x);
        if (sex !== undefined) expect(normalizeSex(sex)).toBe(sex);
        const ids = normalizeIdentifiers([x, x]);
        expect(normalizeIdentifiers(ids)).toEqual(ids);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.emailAddress(), (x) => {
        const email = normalizeEmail(x);
        expect(email).toBe(x.toLowerCase());
        expect(normalizeEmail(email)).toBe(email);
      }),
    );
  });

  it('swapDayMonth is an involution where defined', () => {
    fc.assert(
      fc.property(fc.oneof(isoDates, text), (x) => {
        const swapped = swapDayMonth(x);
        if (swapped === undefined) return;
        expect(swapped).not.toBe(x);
        expect(parseIsoDate(swapped)).toBe(swapped);
        expect(swapDayMonth(swapped)).toBe(parseIsoDate(x));
      }),
      { numRuns: 500 },
    );
  });
});

describe('names', () => {
  it('folds diacritics, case and punctuation', () => {
    expect(nameKey('Núñez')).toBe('NUNEZ');
    expect(normalizePerson({ family: 'Núñez' }).family).toBe(normalizePerson({ family: 'NUNEZ' }).family);
    expect(normalizePerson({ given: 'Zoë', family: 'Brontë' })).toMatchObject({ given: 'ZOE', family: 'BRONTE' });
    expect(normalizePerson({ family: "O'Brien" })).toMatchObject({ family: 'OBRIEN', familyParts: ['OBRIEN'] });
    expect(normalizePerson({ family: 'O Brien' }).family).toBe('OBRIEN');
  });

  it('splits hyphenated and compound family names into parts, dropping particles only from the parts', () => {
    expect(normalizePerson({ family: 'Garcia-Lopez' })).toMatchObject({ family: 'GARCIALOPEZ', familyParts: ['GARCIA', 'LOPEZ'] });
    expect(normalizePerson({ family: 'García López' })).toMatchObject({ family: 'GARCIALOPEZ', familyParts: ['GARCIA', 'LOPEZ'] });
    expect(normalizePerson({ family: 'de la Cruz' })).toMatchObject({ family: 'DELACRUZ', familyParts: ['CRUZ'] });
    expect(normalizePerson({ family: 'van der Berg-Smit' })).toMatchObject({ family: 'VANDERBERGSMIT', familyParts: ['BERG', 'SMIT'] });
    expect(normalizePerson({ family: 'Da' })).toMatchObject({ family: 'DA', familyParts: ['DA'] });
  });

  it('takes the first given token as the first name and the rest, then middle, as middle names', () => {
    expect(normalizePerson({ given: 'Patricia Ann', middle: 'Marie Louise' })).toMatchObject({
      given: 'PATRICIA',
      middle: ['ANN', 'MARIE', 'LOUISE'],
    });
    expect(normalizePerson({ given: 'Dr. Jane' }).given).toBe('JANE');
    expect(normalizePerson({ given: 'J.', middle: 'R R' })).toMatchObject({ given: 'J', middle: ['R', 'R'] });
  });

  it('splits generational suffixes off the names when the suffix field is empty', () => {
    expect(normalizePerson({ given: 'John', family: 'Smith Jr' })).toMatchObject({ given: 'JOHN', family: 'SMITH', suffix: 'JR' });
    expect(normalizePerson({ given: 'Robert', family: 'Johnson Jr.' })).toMatchObject({ family: 'JOHNSON', suffix: 'JR' });
    expect(normalizePerson({ given: 'Robert', family: 'Johnson, Jr' })).toMatchObject({ family: 'JOHNSON', suffix: 'JR' });
    expect(normalizePerson({ family: 'Ford III' })).toMatchObject({ family: 'FORD', suffix: 'III' });
    expect(normalizePerson({ family: 'Windsor V' })).toMatchObject({ family: 'WINDSOR', suffix: 'V' });
    expect(normalizePerson({ given: 'Martin Luther Jr', family: 'King' })).toMatchObject({ given: 'MARTIN', middle: ['LUTHER'], suffix: 'JR' });
    // The suffix field wins; the name still loses its tail.
    expect(normalizePerson({ family: 'Smith Jr', suffix: 'Sr.' })).toMatchObject({ family: 'SMITH', suffix: 'SR' });
    expect(normalizePerson({ family: 'Smith', suffix: '3rd' }).suffix).toBe('III');
    expect(normalizePerson({ family: 'Smith', suffix: 'MD' }).suffix).toBeUndefined();
    // A lone V in a given name is an initial, and a name that is only a suffix word stays a name.
    expect(normalizePerson({ given: 'John V' })).toMatchObject({ given: 'JOHN', middle: ['V'], suffix: undefined });
    expect(normalizePerson({ family: 'Junior' })).toMatchObject({ family: 'JUNIOR', suffix: undefined });
  });

  it('treats placeholder names as missing, but keeps initials', () => {
    for (const given of ['BABY BOY', 'Baby Girl', 'baby', 'Baby Boy A', 'UNKNOWN', 'Unk', 'NONE', 'NFN', 'FNU', 'TEST', 'XXX', 'zzzz']) {
      expect(normalizePerson({ given }), given).toMatchObject({ given: undefined, givenCanonical: [], givenPhonetic: [] });
    }
    for (const family of ['UNKNOWN', 'LNU', 'Test', 'XXX']) {
      expect(normalizePerson({ family }), family).toMatchObject({ family: undefined, familyParts: [], familyPhonetic: [] });
    }
    expect(normalizePerson({ given: 'Ann', middle: 'NMN' }).middle).toEqual([]);
    expect(normalizePerson({ given: 'FNU', middle: 'Maria' })).toMatchObject({ given: undefined, middle: ['MARIA'] });
    expect(normalizePerson({ given: 'J' }).given).toBe('J');
  });

  it('computes Double Metaphone codes and nickname sets for the first given name', () => {
    const p = normalizePerson({ given: 'Bill', family: 'Smith' });
    expect(p.givenCanonical).toContain('WILLIAM');
    expect(p.givenCanonical).toContain('BILL');
    expect(p.givenPhonetic).toEqual(['PL']);
    expect(p.familyPhonetic).toEqual(['SM0', 'XMT']);
    expect(normalizePerson({ given: 'Xyzzyq' }).givenCanonical).toEqual(['XYZZYQ']);
  });
});

describe('dates and sex', () => {
  it('keeps valid birth dates and drops placeholders, pre-1900 and future dates', () => {
    expect(normalizePerson({ birthDate: '1974-12-05' }).birthDate).toBe('1974-12-05');
    expect(normalizePerson({ birthDate: ' 1974-12-05 ' }).birthDate).toBe('1974-12-05');
    for (const birthDate of ['1900-01-01', '1901-01-01', '1800-01-01', '9999-12-31', '0001-01-01', '1899-12-31', '2023-02-30', '12/05/1974', '']) {
      expect(normalizePerson({ birthDate }).birthDate, birthDate).toBeUndefined();
    }
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(normalizePerson({ birthDate: tomorrow }).birthDate).toBeUndefined();
    expect(normalizeBirthDate('2024-06-01', '2024-05-31')).toBeUndefined();
  });

  it('swaps day and month when the result is a valid, different date', () => {
    expect(swapDayMonth('1974-12-05')).toBe('1974-05-12');
    expect(swapDayMonth('1974-05-12')).toBe('1974-12-05');
    expect(swapDayMonth('1974-05-05')).toBeUndefined();
    expect(swapDayMonth('1974-05-13')).toBeUndefined();
    expect(swapDayMonth('not a date')).toBeUndefined();
  });

  it('reads FHIR and roster sex codes', () => {
    expect(['male', 'M', 'm', 'MALE', ' Male '].map(normalizeSex)).toEqual(Array(5).fill('male'));
    expect(['female', 'F', 'f', 'FEMALE'].map(normalizeSex)).toEqual(Array(4).fill('female'));
    expect(['other', 'unknown', 'U', 'X', '', undefined].map(normalizeSex)).toEqual(Array(6).fill(undefined));
  });
});

describe('contact details', () => {
  it('abbreviates USPS street suffixes, directionals and unit designators', () => {
    expect(normalizeStreet('123 North Main Street Apartment 4')).toBe('123 N MAIN ST APT 4');
    expect(normalizeStreet('123 N. Main St., Apt. 4')).toBe('123 N MAIN ST APT 4');
    expect(normalizeStreet('123  n main st  #4')).toBe('123 N MAIN ST APT 4');
    expect(normalizeStreet('123 N Main St Apt #4')).toBe('123 N MAIN ST APT 4');
    expect(normalizeStreet('9 Southwest Elm Boulevard, Suite 200, Floor 3, Building B')).toBe('9 SW ELM BLVD STE 200 FL 3 BLDG B');
    expect(normalizeStreet('1 Oak Avenue / 2 Pine Road / 3 Ash Drive / 4 Elm Lane')).toBe('1 OAK AVE 2 PINE RD 3 ASH DR 4 ELM LN');
    expect(normalizeStreet('5 Court Terrace Circle Highway Parkway Square Trail Way Place')).toBe('5 CT TER CIR HWY PKWY SQ TRL WAY PL');
    expect(normalizeStreet('P.O. Box 12')).toBe('PO BOX 12');
    expect(normalizeStreet('12 Rue de l’Église')).toBe('12 RUE DE LEGLISE');
    expect(normalizeStreet(' ,. ')).toBeUndefined();
  });

  it('keeps the five-digit ZIP and Australian four-digit postcodes', () => {
    expect(normalizeZip5('62701-1234')).toBe('62701');
    expect(normalizeZip5('627011234')).toBe('62701');
    expect(normalizeZip5(' 62701 ')).toBe('62701');
    expect(normalizeZip5('2615')).toBe('2615');
    for (const zip of ['00000', '99999', '0000', '123', '123456', 'K1A 0B6', '']) {
      expect(normalizeZip5(zip), zip).toBeUndefined();
    }
  });

  it('normalises phone numbers to digits', () => {
    expect(normalizePhone('(217) 555-0100')).toBe('2175550100');
    expect(normalizePhone('+1 217 555 0100')).toBe('2175550100');
    expect(normalizePhone('1-217-555-0100')).toBe('2175550100');
    expect(normalizePhone('555-0100')).toBe('5550100');
    expect(normalizePhone('217.555.0100 ext. 42')).toBe('2175550100');
    expect(normalizePhone('02 6123 4567')).toBe('0261234567');
    for (const phone of ['000-000-0000', '1234567890', '0000000', '999-9999', '555-01', '+44 20 7946 0958', '']) {
      expect(normalizePhone(phone), phone).toBeUndefined();
    }
  });

  it('accepts e-mail addresses with one @ and text on either side', () => {
    expect(normalizeEmail('  Pat.Person@Example.COM ')).toBe('pat.person@example.com');
    for (const email of ['pat', '@example.com', 'pat@', 'a@b@c', 'pat person@example.com', 'none@none.com', '']) {
      expect(normalizeEmail(email), email).toBeUndefined();
    }
  });

  it('trims, upper-cases and de-duplicates identifiers', () => {
    expect(normalizeIdentifiers([' dh10001235 ', 'DH10001235', '', '  ', '55678'])).toEqual(['DH10001235', '55678']);
    expect(normalizePerson({}).identifiers).toEqual([]);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareAddress,
  compareBirthDate,
  compareEmail,
  compareFamily,
  compareGiven,
  compareIdentifiers,
  comparePhone,
  compareRecords,
  compareSex,
  compareSuffix,
  FIELD_LEVELS,
  FIELDS,
} from '../src/matching/comparisons.js';
import { jaroWinkler } from '../src/matching/compare.js';
import { canonicalGivenNames } from '../src/matching/nicknames.js';
import { normalizePerson } from '../src/matching/normalize.js';
import type { NormalizedPerson, PersonFields } from '../src/matching/record.js';

const person = (fields: PersonFields): NormalizedPerson => normalizePerson(fields);
const given = (a: string, b: string) => compareGiven(person({ given: a }), person({ given: b }));
const family = (a: string, b: string) => compareFamily(person({ family: a }), person({ family: b }));
const born = (a: string, b: string) => compareBirthDate(person({ birthDate: a }), person({ birthDate: b }));

/** Small alphabets so random people collide often enough to reach every level. */
const names = fc.constantFrom(
  'William', 'Bill', 'Billy', 'Will', 'Peggy', 'Margaret', 'Olivia', 'Oliver', 'Jon', 'John', 'J', 'O', 'Smith',
  'Smyth', 'Smith-Jones', 'Jones', 'García López', 'Garcia', 'de la Cruz', 'Cruz', 'Baby Boy', 'Unknown', 'Ann',
  'Anne', 'Núñez', 'Nunez', 'Catherine', 'Kathryn', '',
);
const nameList = fc.array(names, { maxLength: 3 }).map((parts) => parts.join(' '));
const dates = fc.constantFrom('1974-12-05', '1974-05-12', '1974-12-06', '1975-12-05', '1979-12-31', '1980-12-31', '2015-06-14', '1900-01-01', 'bad');
const personFields: fc.Arbitrary<PersonFields> = fc.record(
  {
    given: fc.oneof(names, nameList, fc.string()),
    middle: fc.oneof(names, nameList),
    family: fc.oneof(names, nameList, fc.string()),
    suffix: fc.constantFrom('', 'Jr', 'Sr', 'III', 'MD'),
    birthDate: dates,
    sex: fc.constantFrom('male', 'female', 'M', 'F', 'unknown', 'other'),
    addressLine: fc.constantFrom('123 North Main Street', '123 N Main St', '9 Elm Rd', ''),
    postalCode: fc.constantFrom('62701', '62701-1234', '62702', '2615', '00000', ''),
    phone: fc.constantFrom('217-555-0100', '555-0100', '217-555-0199', '000-000-0000', ''),
    email: fc.constantFrom('pat@example.com', 'PAT@example.com ', 'kim@example.com', 'nope', ''),
    identifiers: fc.array(fc.constantFrom('55678', 'DH10001235', ' dh10001235', 'X1', ''), { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

describe('comparison properties', () => {
  it('every comparator is symmetric and returns one of its levels', () => {
    fc.assert(
      fc.property(personFields, personFields, (fa, fb) => {
        const a = person(fa);
        const b = person(fb);
        const ab = compareRecords(a, b);
        expect(compareRecords(b, a)).toEqual(ab);
        for (const field of FIELDS) expect(FIELD_LEVELS[field]).toContain(ab[field]);
      }),
      { numRuns: 2000 },
    );
  });

  it('a person compared with themselves agrees on every field they have', () => {
    fc.assert(
      fc.property(personFields, (fields) => {
        const p = person(fields);
        const v = compareRecords(p, p);
        expect(['exact', 'missing']).toContain(v.given);
        expect(['exact', 'missing']).toContain(v.family);
        expect(['exact', 'missing']).toContain(v.birthDate);
        expect(['agree', 'missing']).toContain(v.sex);
        expect(['street-and-zip', 'street', 'zip', 'locality', 'missing']).toContain(v.address);
        expect(['exact', 'missing']).toContain(v.middle);
        expect(['household', 'missing']).toContain(v.identifier);
      }),
      { numRuns: 300 },
    );
  });

  it('jaroWinkler is symmetric and within [0, 1]', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (x, y) => {
        const s = jaroWinkler(x, y);
        expect(jaroWinkler(y, x)).toBe(s);
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(1 + 1e-12);
      }),
    );
  });
});

describe('given name', () => {
  it('exact after folding', () => {
    expect(given('José', 'JOSE')).toBe('exact');
    expect(given('Patricia Ann', 'patricia')).toBe('exact');
  });

  it('nickname through the nickname table', () => {
    expect(given('Bill', 'William')).toBe('nickname');
    expect(given('William', 'Bill')).toBe('nickname');
    expect(given('Peggy', 'Margaret')).toBe('nickname');
    expect(given('Peg', 'Peggy')).toBe('nickname'); // both nicknames of MARGARET
    expect(canonicalGivenNames('BILL')).toContain('WILLIAM');
    expect(canonicalGivenNames('PEGGY')).toContain('MARGARET');
  });

  it('keeps twins apart: Olivia vs Oliver is different', () => {
    expect(jaroWinkler('OLIVIA', 'OLIVER')).toBeCloseTo(0.8667, 3);
    // Alike in spelling (Jaro–Winkler 0.87, two edits) but only `similar`, a level that never confirms an
    // identity without an agreeing middle name (decide.ts identityConfirmed).
    expect(given('Olivia', 'Oliver')).toBe('similar');
    // Rhyming names differ in their first letter: not a typo level (Eva/Ava, Ella/Bella).
    expect(given('Eva', 'Ava')).not.toBe('one-edit');
    expect(given('Ella', 'Bella')).not.toBe('one-edit');
    // A transposition at the start is a typo, never a rhyme.
    expect(given('Ojse', 'Jose')).toBe('one-edit');
    // OLLIE is a nickname of both, but that does not make them nicknames of each other.
    expect(given('Ollie', 'Olivia')).toBe('nickname');
    expect(given('Ollie', 'Oliver')).toBe('nickname');
  });

  it('jw-high for spelling variants, phonetic for sound-alikes', () => {
    expect(['jw-high', 'phonetic', 'nickname']).toContain(given('Jon', 'John'));
    expect(given('Martha', 'Marhta')).toBe('jw-high');
    expect(given('Jonathon', 'Jonathen')).toBe('jw-high');
    expect(given('Catherine', 'Kathryn')).toBe('phonetic');
    expect(given('Stephen', 'Steven')).toBe('phonetic');
  });

  it('swapped when the first name is the other side’s middle name or given and family are exchanged', () => {
    expect(compareGiven(person({ given: 'Ann', middle: 'Marie' }), person({ given: 'Marie' }))).toBe('swapped');
    expect(compareGiven(person({ given: 'Patricia Ann' }), person({ given: 'Ann' }))).toBe('swapped');
    expect(compareGiven(person({ given: 'Wei', family: 'Zhang' }), person({ given: 'Zhang', family: 'Wei' }))).toBe('swapped');
  });

  it('initial when one side is a single letter matching the other', () => {
    expect(given('J', 'Jonathan')).toBe('initial');
    expect(given('Jonathan', 'J.')).toBe('initial');
    expect(given('J', 'K')).toBe('different');
    expect(given('J', 'J')).toBe('exact');
  });

  it('different and missing', () => {
    expect(given('Robert', 'Susan')).toBe('different');
    expect(given('Baby Boy', 'Robert')).toBe('missing');
    expect(given('UNKNOWN', 'Robert')).toBe('missing');
    expect(given('', 'Robert')).toBe('missing');
  });
});

describe('family name', () => {
  it('exact after folding', () => {
    expect(family('Núñez', 'NUNEZ')).toBe('exact');
    expect(family("O'Brien", 'OBrien')).toBe('exact');
    expect(family('García López', 'Garcia-Lopez')).toBe('exact');
    expect(family('Johnson Jr.', 'Johnson')).toBe('exact');
  });

  it('part for hyphenated, married and compound names', () => {
    expect(family('Smith', 'Smith-Jones')).toBe('part');
    expect(family('Jones', 'Smith-Jones')).toBe('part');
    expect(family('Garcia Lopez', 'Lopez-Ruiz')).toBe('part');
    expect(family('de la Cruz', 'Cruz')).toBe('part');
  });

  it('jw-high, phonetic, different, missing', () => {
    expect(family('Johnson', 'Jonhson')).toBe('jw-high');
    expect(family('Smith', 'Smyth')).toBe('one-edit');
    expect(family('Smith', 'Schmidt')).toBe('phonetic');
    expect(family('Smith', 'Brown')).toBe('different');
    expect(family('Unknown', 'Smith')).toBe('missing');
    expect(family('Smith', '')).toBe('missing');
  });
});

describe('birth date', () => {
  it('exact, transposed day and month, one-digit typo, year off by one', () => {
    expect(born('1974-12-05', '1974-12-05')).toBe('exact');
    expect(born('1974-12-05', '1974-05-12')).toBe('transposed');
    expect(born('1974-12-05', '1974-12-06')).toBe('one-digit');
    expect(born('1974-12-05', '1974-12-08')).toBe('one-digit');
    // A year one apart that differs in a single digit is already `one-digit`, the earlier level.
    expect(born('1974-12-05', '1975-12-05')).toBe('one-digit');
    expect(born('1979-12-31', '1980-12-31')).toBe('year-off-by-one');
    expect(born('1999-03-01', '2000-03-01')).toBe('year-off-by-one');
  });

  it('different and missing', () => {
    expect(born('1974-12-05', '1980-01-20')).toBe('different');
    expect(born('1974-12-05', '1974-12-15')).toBe('one-digit');
    // A digit of the century or decade moves the date 10+ years: a Jr/Sr pair, not a typo.
    expect(born('1950-03-12', '1980-03-12')).toBe('decade-digit');
    // Exactly ten years apart (the decade digit one off) is a slip: no parent is ten years older than their child.
    expect(born('1974-12-05', '1984-12-05')).toBe('ten-years');
    expect(born('1974-12-05', '1994-12-05')).toBe('decade-digit');
    expect(born('1974-12-05', '1974-11-15')).toBe('different');
    expect(born('1900-01-01', '1974-12-05')).toBe('missing');
    expect(born('1974-02-30', '1974-12-05')).toBe('missing');
  });
});

describe('other fields', () => {
  it('sex', () => {
    expect(compareSex(person({ sex: 'female' }), person({ sex: 'F' }))).toBe('agree');
    expect(compareSex(person({ sex: 'male' }), person({ sex: 'F' }))).toBe('different');
    expect(compareSex(person({ sex: 'unknown' }), person({ sex: 'F' }))).toBe('missing');
  });

  it('suffix', () => {
    expect(compareSuffix(person({ family: 'Smith Jr' }), person({ suffix: 'JR.' }))).toBe('agree');
    expect(compareSuffix(person({ suffix: 'Jr' }), person({ suffix: 'Sr' }))).toBe('different');
    expect(compareSuffix(person({ suffix: 'Jr' }), person({}))).toBe('missing');
  });

  it('address', () => {
    const a = person({ addressLine: '123 North Main Street Apartment 4', postalCode: '62701-1234' });
    expect(compareAddress(a, person({ addressLine: '123 N MAIN ST APT 4', postalCode: '62701' }))).toBe('street-and-zip');
    expect(compareAddress(a, person({ addressLine: '9 Elm Rd', postalCode: '62701' }))).toBe('zip');
    expect(compareAddress(a, person({ postalCode: '62701' }))).toBe('zip');
    // The same street line with a mistyped or absent postcode is still the same home.
    expect(compareAddress(a, person({ addressLine: '123 N Main St Apt 4', postalCode: '62702' }))).toBe('street');
    expect(compareAddress(a, person({ addressLine: '123 N Main St Apt 4' }))).toBe('street');
    // A slip in the street line: the same house number and postcode, nearly the same words.
    expect(compareAddress(a, person({ addressLine: '123 N Mian St Apt 4', postalCode: '62701' }))).toBe('street-near-and-zip');
    // A neighbour: another house number on the same street is never a near street.
    expect(compareAddress(a, person({ addressLine: '125 N Main St Apt 4', postalCode: '62701' }))).toBe('zip');
    expect(compareAddress(a, person({ addressLine: '125 N Main St Apt 4', postalCode: '62702' }))).toBe('zip-near');
    expect(compareAddress(person({ addressLine: '1 Oak Ave', city: 'St. Kilda', postalCode: '3182' }), person({ addressLine: '9 Elm Rd', city: 'ST KILDA', postalCode: '3000' }))).toBe('locality');
    expect(compareAddress(a, person({ addressLine: '9 Elm Rd', postalCode: '10001' }))).toBe('different');
    expect(compareAddress(a, person({ city: 'Springfield' }))).toBe('missing');
    expect(compareAddress(a, person({ postalCode: '00000' }))).toBe('missing');
    expect(compareAddress(person({ postalCode: '2615' }), person({ postalCode: '2615' }))).toBe('zip');
  });

  it('phone', () => {
    expect(comparePhone(person({ phone: '(217) 555-0100' }), person({ phone: '+1 217 555 0100' }))).toBe('exact');
    expect(comparePhone(person({ phone: '555-0100' }), person({ phone: '217-555-0100' }))).toBe('exact');
    expect(comparePhone(person({ phone: '217-555-0100' }), person({ phone: '217-555-0199' }))).toBe('different');
    expect(comparePhone(person({ phone: '000-000-0000' }), person({ phone: '217-555-0100' }))).toBe('missing');
  });

  it('email', () => {
    expect(compareEmail(person({ email: 'Pat@Example.com' }), person({ email: ' pat@example.com' }))).toBe('exact');
    expect(compareEmail(person({ email: 'pat@example.com' }), person({ email: 'kim@example.com' }))).toBe('different');
    expect(compareEmail(person({ email: 'pat' }), person({ email: 'pat@example.com' }))).toBe('missing');
  });

  it('identifiers', () => {
    // A value in common; only the candidate lookup can say it is personal (decide.test / resolve.test).
    expect(compareIdentifiers(person({ identifiers: ['55678', 'dh10001235'] }), person({ identifiers: ['DH10001235'] }))).toBe('household');
    // Near values, for ids long enough that one slip is telling.
    expect(compareIdentifiers(person({ identifiers: ['DH10001235'] }), person({ identifiers: ['DH10001285'] }))).toBe('one-substitution');
    expect(compareIdentifiers(person({ identifiers: ['DH10001235'] }), person({ identifiers: ['DH10001325'] }))).toBe('transposition');
    expect(compareIdentifiers(person({ identifiers: ['X9', 'DH10001235'] }), person({ identifiers: ['DH10001325', 'DH10001236'] }))).toBe('one-substitution');
    expect(compareIdentifiers(person({ identifiers: ['DH10001235'] }), person({ identifiers: ['DH10003215'] }))).toBe('different');
    expect(compareIdentifiers(person({ identifiers: ['DH10001235'] }), person({ identifiers: ['DH1000123'] }))).toBe('different');
    expect(compareIdentifiers(person({ identifiers: ['55678'] }), person({ identifiers: ['55679'] }))).toBe('different');
    expect(compareIdentifiers(person({ identifiers: ['55678'] }), person({ identifiers: [' '] }))).toBe('missing');
  });

  it('compareRecords puts every field together', () => {
    const member = person({
      given: 'Patricia Ann',
      family: 'Person',
      birthDate: '1974-12-25',
      sex: 'female',
      addressLine: '123 Main Street',
      postalCode: '62701',
      phone: '217-555-0100',
      email: 'pat@example.com',
      identifiers: ['55678'],
    });
    const offered = person({ given: 'Pat', family: 'Person', birthDate: '1974-12-25', sex: 'F', postalCode: '62701-0001', identifiers: ['55678'] });
    expect(compareRecords(member, offered)).toEqual({
      given: 'nickname',
      middle: 'missing',
      family: 'exact',
      birthDate: 'exact',
      sex: 'agree',
      suffix: 'missing',
      address: 'zip',
      phone: 'missing',
      email: 'missing',
      identifier: 'household',
    });
  });
});

describe('oneEditApart', () => {
  it('is Damerau distance exactly one', async () => {
    const { oneEditApart } = await import('../src/matching/compare.js');
    expect(oneEditApart('GRACE', 'GRACE')).toBe(false);
    expect(oneEditApart('GRACE', 'GRAСE'.replace('С', 'X'))).toBe(true); // substitution
    expect(oneEditApart('GRACE', 'GARCE')).toBe(true); // adjacent transposition
    expect(oneEditApart('GRACE', 'GRACIE')).toBe(true); // insertion
    expect(oneEditApart('AVA', 'AV')).toBe(true); // deletion
    expect(oneEditApart('OLIVIA', 'OLIVER')).toBe(false); // twins stay apart
    expect(oneEditApart('AIDEN', 'JADEN')).toBe(false);
    expect(oneEditApart('ABC', 'CBA')).toBe(false);
  });
});

describe('withinTwoEdits', () => {
  /** Optimal-string-alignment distance by the full table: the reference the banded version must agree with. */
  function osa(a: string, b: string): number {
    const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        const cost = a[i - 1] === b[j - 1] ? 0 : 1;
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
    return d[a.length]![b.length]!;
  }

  it('agrees with the full optimal-string-alignment table on short strings over a small alphabet', async () => {
    const { withinTwoEdits } = await import('../src/matching/compare.js');
    const name = fc.string({ unit: fc.constantFrom('A', 'B', 'C', 'D'), minLength: 0, maxLength: 8 });
    fc.assert(
      fc.property(name, name, (a, b) => {
        expect(withinTwoEdits(a, b)).toBe(osa(a, b) <= 2);
      }),
      { numRuns: 3000 },
    );
    expect(withinTwoEdits('JORDHAU', 'JORDAN')).toBe(true);
    expect(withinTwoEdits('OLIVIA', 'OLIVER')).toBe(true);
    expect(withinTwoEdits('CONNOR', 'OLIVIA')).toBe(false);
  });
});

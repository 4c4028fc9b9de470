import { describe, expect, it } from 'vitest';
import { resolveDeterministically, type CardCandidate } from '../src/matching/deterministic.js';
import { givenNameKey, nameKey } from '../src/matching/normalize.js';

const member = (id: string, given: string, family: string, birthDate: string, gender: string | null = null): CardCandidate => ({
  memberUuid: `uuid-${id}`,
  memberId: id,
  givenKey: givenNameKey(given),
  familyKey: nameKey(family),
  birthDate,
  gender,
});
const family = [
  member('1', 'Carlos', 'Garcia', '1980-03-02', 'male'),
  member('2', 'Maria', 'García', '1982-07-19', 'female'),
  member('3', 'Olivia', 'Garcia', '2015-06-14', 'female'),
  member('4', 'Oliver', 'Garcia', '2015-06-14', 'male'),
];
const ask = (given: string, familyName: string, birthDate: string, gender?: string) => ({ names: [{ family: familyName, given: [given] }], birthDate, gender });

describe('deterministic resolution', () => {
  it('picks the twin whose name agrees', () => {
    expect(resolveDeterministically(ask('Olivia', 'Garcia', '2015-06-14'), family)).toMatchObject({ outcome: 'matched', member: { memberId: '3' } });
    expect(resolveDeterministically(ask('OLIVER', 'garcia', '2015-06-14'), family)).toMatchObject({ outcome: 'matched', member: { memberId: '4' } });
  });
  it('folds accents and case on both sides', () => {
    expect(resolveDeterministically(ask('maria', 'GARCIA', '1982-07-19'), family)).toMatchObject({ outcome: 'matched', member: { memberId: '2' } });
  });
  it('does not confirm a family member on a shared card', () => {
    expect(resolveDeterministically(ask('Olivia', 'Garcia', '1980-03-02'), family)).toMatchObject({ outcome: 'no-match', reason: 'not-confirmed' });
  });
  it('refuses when genders on both sides disagree', () => {
    expect(resolveDeterministically(ask('Olivia', 'Garcia', '2015-06-14', 'male'), family).outcome).toBe('no-match');
  });
  it('is ambiguous when two different records confirm', () => {
    const dupes = [member('a', 'Sam', 'Lee', '2001-01-01'), member('b', 'Sam', 'Lee', '2001-01-01')];
    expect(resolveDeterministically(ask('Sam', 'Lee', '2001-01-01'), dupes)).toMatchObject({ outcome: 'ambiguous', confirmed: 2 });
  });
  it('counts one member reached by two card identifiers once', () => {
    expect(resolveDeterministically(ask('Carlos', 'Garcia', '1980-03-02'), [family[0]!, family[0]!]).outcome).toBe('matched');
  });
  it('has no match without candidates', () => {
    expect(resolveDeterministically(ask('A', 'B', '2000-01-01'), [])).toMatchObject({ outcome: 'no-match', reason: 'no-candidate' });
  });
});

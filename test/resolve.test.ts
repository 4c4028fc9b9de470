import { describe, expect, it } from 'vitest';
import { normalizePerson } from '../src/matching/normalize.js';
import type { PersonFields } from '../src/matching/record.js';
import { decide, identityConfirmed, type Candidate } from '../src/matching/decide.js';
import { handSetModel } from './support/model.js';

const thresholds = { upper: 0.99, lower: 0.2, marginBits: 6 };
const household = { family: 'Garcia', addressLine: '5 Sample Street', postalCode: '73301', phone: '512-555-0101', identifiers: ['G100'] };
const member = (memberId: string, fields: PersonFields): Candidate => ({
  memberUuid: `uuid-${memberId}`,
  memberId,
  person: normalizePerson(fields),
  cardHit: false,
});
const olivia = member('3', { ...household, given: 'Olivia', birthDate: '2015-06-14', sex: 'female' });
const oliver = member('4', { ...household, given: 'Oliver', birthDate: '2015-06-14', sex: 'male' });
const carlos = member('1', { ...household, given: 'Carlos', birthDate: '1980-03-02', sex: 'male' });
const ask = (fields: PersonFields) => normalizePerson(fields);

describe('decide', () => {
  it('auto-matches the right twin and only that twin', () => {
    const decision = decide(handSetModel, thresholds, ask({ ...household, given: 'Olivia', birthDate: '2015-06-14', sex: 'female' }), [carlos, olivia, oliver]);
    expect(decision).toMatchObject({ outcome: 'matched', member: { memberId: '3' }, modelVersion: 'test-hand-set' });
    const other = decide(handSetModel, thresholds, ask({ ...household, given: 'Oliver', birthDate: '2015-06-14', sex: 'male' }), [carlos, olivia, oliver]);
    expect(other).toMatchObject({ outcome: 'matched', member: { memberId: '4' } });
  });

  it('never auto-matches a twin who is not a member to the sibling who is', () => {
    // Everything the household shares agrees; only the first name and sex tell them apart.
    const decision = decide(handSetModel, thresholds, ask({ ...household, given: 'Oliver', birthDate: '2015-06-14', sex: 'male' }), [carlos, olivia]);
    expect(decision.outcome).not.toBe('matched');
  });

  it('never auto-matches Jr to Sr', () => {
    const senior = member('20', { ...household, given: 'Robert', family: 'Johnson', suffix: 'SR', birthDate: '1950-03-12', sex: 'male' });
    const decision = decide(handSetModel, thresholds, ask({ ...household, given: 'Robert', family: 'Johnson', suffix: 'JR', birthDate: '1980-03-12', sex: 'male' }), [senior]);
    expect(decision.outcome).not.toBe('matched');
    // Without the suffix on the request, the one-digit birth-date difference still stops an automatic match.
    const unsuffixed = decide(handSetModel, thresholds, ask({ ...household, given: 'Robert', family: 'Johnson', birthDate: '1980-03-12', sex: 'male' }), [senior]);
    expect(unsuffixed.outcome).not.toBe('matched');
  });

  it('calls two near-identical candidates a conflict, never a match', () => {
    const twinA = member('30', { ...household, given: 'Sam', birthDate: '2001-01-01' });
    const twinB = member('31', { ...household, given: 'Sam', birthDate: '2001-01-01' });
    expect(decide(handSetModel, thresholds, ask({ ...household, given: 'Sam', birthDate: '2001-01-01' }), [twinA, twinB])).toMatchObject({ outcome: 'review', reason: 'conflict' });
  });

  it('sends a high score that the person-level fields do not confirm to review', () => {
    // An initial agrees with Olivia and with any other O… in the household: it cannot tell siblings apart.
    const decision = decide(handSetModel, thresholds, ask({ ...household, given: 'O', birthDate: '2015-06-14', sex: 'female' }), [olivia]);
    expect(decision).toMatchObject({ outcome: 'review', reason: 'identity-unconfirmed' });
  });

  it('answers no-match without candidates, and below the lower threshold', () => {
    expect(decide(handSetModel, thresholds, ask({ given: 'A', family: 'B', birthDate: '2000-01-01' }), [])).toMatchObject({ outcome: 'no-match', reason: 'no-candidate' });
    const stranger = decide(handSetModel, thresholds, ask({ given: 'Zed', family: 'Quill', birthDate: '1990-09-09', postalCode: '10001' }), [carlos]);
    expect(stranger).toMatchObject({ outcome: 'no-match', reason: 'below-threshold' });
  });

  it('explains every decision field by field, without demographics', () => {
    const decision = decide(handSetModel, thresholds, ask({ ...household, given: 'Olivia', birthDate: '2015-06-14', sex: 'female' }), [olivia]);
    expect(decision.top[0]!.explanation.map((e) => e.field)).toEqual(['given', 'middle', 'family', 'birthDate', 'sex', 'suffix', 'address', 'phone', 'email', 'identifier']);
    expect(JSON.stringify(decision)).not.toMatch(/Olivia|OLIVIA|2015|Garcia|GARCIA|73301/);
  });
});

describe('the hazards of matching.md', () => {
  const maria = member('50', { given: 'Maria', middle: 'Elena', family: 'Smith', birthDate: '1984-02-11', sex: 'female', addressLine: '12 Oak Street', postalCode: '02134', phone: '617-555-0142' });
  const decideFor = (fields: PersonFields) => decide(handSetModel, thresholds, ask(fields), [maria]);
  const asked = { given: 'Maria', family: 'Smith', birthDate: '1984-02-11', sex: 'female', addressLine: '12 Oak St', postalCode: '02134', phone: '6175550142' };

  it('matches through a move: a new address is weak evidence against', () => {
    expect(decideFor({ ...asked, addressLine: '9 Elm Rd', postalCode: '94110', phone: '415-555-0100' }).outcome).toBe('matched');
  });

  it('matches through a nickname, a transposed birth date with current contact data, or a USPS abbreviation', () => {
    expect(decideFor({ ...asked, given: 'Mari' }).outcome).not.toBe('no-match');
    expect(decideFor({ ...asked, birthDate: '1984-11-02' }).outcome).toBe('matched');
    expect(decideFor({ ...asked, addressLine: '12 OAK STREET' }).outcome).toBe('matched');
  });

  it('finds a married or hyphenated name, and the middle name used as first, at least for review', () => {
    expect(decideFor({ ...asked, family: 'Smith-Jones' }).outcome).not.toBe('no-match');
    expect(decideFor({ ...asked, family: 'Jones', addressLine: '9 Elm Rd', postalCode: '94110', phone: undefined }).outcome).not.toBe('no-match');
    expect(decideFor({ ...asked, given: 'Elena' }).outcome).not.toBe('no-match');
    expect(decideFor({ ...asked, given: 'Smith', family: 'Maria' }).outcome).not.toBe('no-match');
  });

  it('gives placeholder names and dates no weight', () => {
    const placeholder = decideFor({ ...asked, given: 'Baby Girl', birthDate: '1900-01-01' });
    expect(placeholder.outcome).not.toBe('matched');
    const levels = Object.fromEntries(placeholder.top[0]!.explanation.map((e) => [e.field, e]));
    expect(levels.given).toMatchObject({ level: 'missing', weight: 0 });
    expect(levels.birthDate).toMatchObject({ level: 'missing', weight: 0 });
  });

  it('folds diacritics before comparing', () => {
    const jose = member('60', { given: 'José', family: 'Núñez', birthDate: '1990-07-04', sex: 'male', postalCode: '33101' });
    expect(decide(handSetModel, thresholds, ask({ given: 'JOSE', family: 'NUNEZ', birthDate: '1990-07-04', sex: 'male', postalCode: '33101' }), [jose])).toMatchObject({ outcome: 'matched' });
  });
});

describe('decide with a card', () => {
  const onCard = (c: Candidate, personal: boolean): Candidate => ({ ...c, cardHit: true, cardPersonal: personal });
  // Olivia moved, and her birth date was keyed one digit off: only her own member number corroborates it.
  const moved = ask({ given: 'Olivia', family: 'Garcia', birthDate: '2015-06-15', sex: 'female', postalCode: '10001', identifiers: ['OL-0003'] });

  it('auto-matches when the card is her own member number', () => {
    const decision = decide(handSetModel, thresholds, moved, [onCard(olivia, true)]);
    expect(decision).toMatchObject({ outcome: 'matched', member: { memberId: '3' } });
    expect(decision.top[0]!.explanation.find((e) => e.field === 'identifier')).toMatchObject({ level: 'personal' });
  });

  it('does not when the card is the household subscriber id, or one digit off her number', () => {
    expect(decide(handSetModel, thresholds, moved, [onCard(olivia, false)]).outcome).not.toBe('matched');
    const numbered = member('3', { ...household, given: 'Olivia', birthDate: '2015-06-14', sex: 'female', identifiers: ['OL-0004'] });
    expect(decide(handSetModel, thresholds, moved, [numbered]).outcome).not.toBe('matched');
  });

  it('never auto-matches her non-member twin sister, even on her personal number', () => {
    const twinOnHerCard = ask({ ...household, given: 'Emma', birthDate: '2015-06-14', sex: 'female', identifiers: ['OL-0003'] });
    expect(decide(handSetModel, thresholds, twinOnHerCard, [onCard(olivia, true), carlos]).outcome).not.toBe('matched');
  });
});

describe('identityConfirmed', () => {
  const base = { given: 'exact', middle: 'missing', family: 'exact', birthDate: 'exact', sex: 'agree', suffix: 'missing', address: 'zip', phone: 'exact', email: 'missing', identifier: 'household' } as const;
  it('needs the first name and the birth date to confirm', () => {
    expect(identityConfirmed(base)).toBe(true);
    expect(identityConfirmed({ ...base, given: 'nickname', birthDate: 'transposed' })).toBe(true);
    // The middle name used as the first confirms only with an exact birth date and current contact data.
    expect(identityConfirmed({ ...base, given: 'swapped' })).toBe(true);
    expect(identityConfirmed({ ...base, given: 'swapped', address: 'different', phone: 'missing', identifier: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'swapped', birthDate: 'transposed' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'phonetic' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'similar' })).toBe(false);
    // A look-alike first name confirms with an agreeing middle name and an exact birth date (twins seldom share one).
    expect(identityConfirmed({ ...base, given: 'similar', middle: 'exact' })).toBe(true);
    expect(identityConfirmed({ ...base, given: 'phonetic', middle: 'initial' })).toBe(true);
    expect(identityConfirmed({ ...base, given: 'similar', middle: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'similar', middle: 'exact', birthDate: 'one-digit' })).toBe(false);
    // A nickname confirms with contact data or the middle name; two formal names of one cluster are twin names.
    expect(identityConfirmed({ ...base, given: 'nickname', address: 'different', phone: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'nickname', address: 'different', phone: 'different', middle: 'exact' })).toBe(true);
    // Given and family names exchanged confirm with an exact birth date in the same area, not elsewhere.
    expect(identityConfirmed({ ...base, given: 'swapped', family: 'exchanged', address: 'zip', phone: 'missing' })).toBe(true);
    expect(identityConfirmed({ ...base, given: 'swapped', family: 'exchanged', address: 'different', phone: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, given: 'swapped', family: 'exchanged', address: 'zip', phone: 'missing', birthDate: 'one-digit' })).toBe(false);
    expect(identityConfirmed({ ...base, birthDate: 'one-digit' })).toBe(true);
    // A near birth date needs current contact data to agree: a namesake born days apart looks like a typo.
    expect(identityConfirmed({ ...base, birthDate: 'one-digit', address: 'different', phone: 'different', identifier: 'missing' })).toBe(false);
    expect(identityConfirmed({ ...base, birthDate: 'transposed', address: 'zip', phone: 'missing', identifier: 'different' })).toBe(false);
    // The subscriber card is the household's, not the person's: it does not corroborate.
    expect(identityConfirmed({ ...base, birthDate: 'one-digit', address: 'different', phone: 'different', identifier: 'household' })).toBe(false);
    // One year or exactly ten years off, like a digit, confirms with current contact data only.
    expect(identityConfirmed({ ...base, birthDate: 'year-off-by-one' })).toBe(true);
    expect(identityConfirmed({ ...base, birthDate: 'ten-years' })).toBe(true);
    expect(identityConfirmed({ ...base, birthDate: 'year-off-by-one', address: 'zip', phone: 'missing' })).toBe(false);
    expect(identityConfirmed({ ...base, birthDate: 'ten-years', address: 'zip', phone: 'missing' })).toBe(false);
    // Twenty years or more with the same name and home is a Jr/Sr pair.
    expect(identityConfirmed({ ...base, birthDate: 'decade-digit' })).toBe(false);
    expect(identityConfirmed({ ...base, birthDate: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, sex: 'different' })).toBe(false);
    expect(identityConfirmed({ ...base, suffix: 'different' })).toBe(false);
  });

  it('counts a personal member number as corroboration, like contact data, but never for a relative-shaped pair', () => {
    const personal = { ...base, identifier: 'personal', address: 'different', phone: 'missing' } as const;
    // Against namesakes: a near birth date, a nickname, the middle name used as the first.
    expect(identityConfirmed({ ...personal, birthDate: 'one-digit' })).toBe(true);
    expect(identityConfirmed({ ...personal, birthDate: 'transposed' })).toBe(true);
    expect(identityConfirmed({ ...personal, given: 'nickname' })).toBe(true);
    expect(identityConfirmed({ ...personal, given: 'swapped' })).toBe(true);
    // Not against relatives: a twin's different first name, a look-alike name, a Jr/Sr birth date, sex, suffix.
    expect(identityConfirmed({ ...personal, given: 'different' })).toBe(false);
    expect(identityConfirmed({ ...personal, given: 'similar' })).toBe(false);
    expect(identityConfirmed({ ...personal, birthDate: 'decade-digit' })).toBe(false);
    expect(identityConfirmed({ ...personal, birthDate: 'different' })).toBe(false);
    expect(identityConfirmed({ ...personal, sex: 'different' })).toBe(false);
    expect(identityConfirmed({ ...personal, suffix: 'different' })).toBe(false);
    // A household card, or a card one slip away, corroborates nothing.
    for (const identifier of ['household', 'one-substitution', 'transposition'] as const) {
      expect(identityConfirmed({ ...personal, identifier, birthDate: 'one-digit' })).toBe(false);
      expect(identityConfirmed({ ...personal, identifier, given: 'nickname' })).toBe(false);
    }
  });

});

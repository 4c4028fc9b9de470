import { doubleMetaphone } from 'double-metaphone';
import type { NormalizedPerson } from './record.js';
import { houseNumber, streetNamePrefix, swapDayMonth } from './normalize.js';

/**
 * Blocking: which members are worth scoring against a query. A union of blocks, each an exact key that a
 * true match is likely to share even when other fields are wrong:
 *
 *   d:  birth date + one name's initial  — survives a change of either name (a marriage, a nickname), moves;
 *                                           filed twice, under the family name's initial and the given name's
 *   fy: family phonetic + birth year      — survives date typos in day/month, moves, given-name changes
 *   gz: given phonetic + ZIP5             — survives any birth-date error and a married-name change
 *   gf: given phonetic + family phonetic  — survives birth-date errors and moves together
 *   gm: given phonetic + birth month-day, filed twice: with the birth decade, and with the family name's initial
 *                                         — survives a married-name change with a slip in the year's last digit,
 *                                           and a slip in any digit of the year with a typo in the family name
 *   fz: family phonetic + ZIP5            — survives a birth-date error with a first-name typo or nickname
 *   hs: house number + the street name's first four letters
 *                                         — survives every name and birth-date error, a moved postcode or town,
 *                                           and a street name typed with a slip after its fourth letter
 *   p:  phone,  e: e-mail
 *
 * Queries also look under `gf` with given and family exchanged (a form filled in the wrong order).
 *
 * A query's given-name codes include the canonical forms of its nicknames, so BILL finds WILLIAM. Card
 * identifiers are a further block, answered from the identifier tables (see member-index.ts).
 *
 * Keys hold PHI (a birth date, a phone number): they live only in the member index, never in logs; a block
 * that is skipped is logged by its kind (the part before the colon), not its value.
 */

export const BLOCKING_KEYS_VERSION = 7;

/** Letters of the street name in the `hs` key: four survived every slip in FEBRL3's duplicates that lost every other block. */
const STREET_PREFIX_LETTERS = 4;

/** Primary Double Metaphone code of a folded name: one code per name keeps blocks few and tight. */
function primaryCode(name: string): string[] {
  return name ? [doubleMetaphone(name)[0]] : [];
}

function givenCodes(person: NormalizedPerson, withNicknames: boolean): string[] {
  const codes = new Set<string>(person.givenPhonetic.slice(0, 1));
  if (withNicknames) for (const name of person.givenCanonical) for (const code of primaryCode(name)) codes.add(code);
  return [...codes].filter(Boolean);
}

function familyCodes(person: NormalizedPerson): string[] {
  const codes = new Set<string>(person.familyPhonetic.slice(0, 1));
  if (person.familyParts.length > 1) for (const part of person.familyParts) for (const code of primaryCode(part).slice(0, 1)) codes.add(code);
  return [...codes].filter(Boolean);
}

/** The keys a member is filed under. */
export function memberBlockingKeys(person: NormalizedPerson): string[] {
  return blockingKeys(person, [person.birthDate].filter((d): d is string => !!d), false);
}

/**
 * The keys a query looks under: the member keys, plus its birth date with day and month swapped (the most
 * common date error) so transposed dates still share the `d:` and `gm:` blocks.
 */
export function queryBlockingKeys(person: NormalizedPerson): string[] {
  const dates = person.birthDate ? [person.birthDate, swapDayMonth(person.birthDate)].filter((d): d is string => !!d) : [];
  return blockingKeys(person, dates, true);
}

/**
 * Members are filed under their own first name's code only; queries look under the codes of the name's
 * canonical forms too. That finds a member WILLIAM from a query BILL at a third of the index size that
 * filing every member under every nickname would cost (the reverse direction is left to the birth-date block).
 */
function blockingKeys(person: NormalizedPerson, dates: string[], withNicknames: boolean): string[] {
  const keys = new Set<string>();
  const given = givenCodes(person, withNicknames);
  const family = familyCodes(person);
  // The initials of the folded names, each tagged with the name it stands for; a query also looks under them
  // exchanged (a form filled in the wrong order).
  const familyInitial = person.family?.[0];
  const givenInitial = person.given?.[0];
  const initials = [familyInitial && `f${familyInitial}`, givenInitial && `g${givenInitial}`];
  if (withNicknames) initials.push(givenInitial && `f${givenInitial}`, familyInitial && `g${familyInitial}`);
  for (const date of dates) {
    for (const initial of initials) if (initial) keys.add(`d:${date}:${initial}`);
    for (const f of family) keys.add(`fy:${f}:${date.slice(0, 4)}`);
    // The decade (`196` of 1961) or the family initial keeps a popular first name's birthday from being a
    // thousandth of the index; either survives what the other does not (a decade digit mistyped: 2021 → 2001).
    for (const g of given) {
      keys.add(`gm:${g}:${date.slice(5)}:${date.slice(0, 3)}`);
      if (familyInitial) keys.add(`gm:${g}:${date.slice(5)}:f${familyInitial}`);
    }
  }
  for (const g of given) {
    if (person.zip5) keys.add(`gz:${g}:${person.zip5}`);
    for (const f of family) keys.add(`gf:${g}:${f}`);
  }
  if (person.zip5) for (const f of family) keys.add(`fz:${f}:${person.zip5}`);
  const street = person.street ? streetNamePrefix(person.street, STREET_PREFIX_LETTERS) : '';
  if (street) keys.add(`hs:${houseNumber(person.street!)}:${street}`);
  if (withNicknames) {
    // Given and family exchanged: the member is filed under gf:<their given>:<their family>.
    for (const g of given) for (const f of family) keys.add(`gf:${f}:${g}`);
  }
  if (person.phone) keys.add(`p:${person.phone}`);
  if (person.email) keys.add(`e:${person.email}`);
  return [...keys];
}

/** The kind of a key (`d`, `fy`, …): safe to log, unlike the key. */
export function blockKind(key: string): string {
  return key.slice(0, key.indexOf(':'));
}

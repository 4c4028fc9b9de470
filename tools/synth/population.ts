import type { RosterDataColumn as RosterColumn } from '../../src/members/roster-format/columns.js';
import { ageOf, randomDateInYear, REFERENCE_YEAR, yearOf } from './dates.js';
import {
  accentedForm,
  drawGivenName,
  drawHispanicSurname,
  drawSurname,
  nameTables,
  stripDiacritics,
  type Sex,
  type SurnameEntry,
} from './names.js';
import { TWIN_NAME_PAIRS } from './name-data.js';
import { choose, type Rng } from './random.js';

/**
 * Households and the people in them. A household is a contract: one subscriber (`self`), maybe a spouse, maybe
 * dependent children, all sharing an address, a subscriber id and a coverage. The generator builds a whole
 * household before any of it is written, which lets a query plan remove one person from it (the twin, the
 * spouse, the Jr who is insured elsewhere) and so test the matcher on a near-identical non-member.
 */

export interface Address {
  line: string;
  city: string;
  state: string;
  postalCode: string;
  /** The area code phones at this address get. */
  areaCode: string;
}

export type Relationship = 'self' | 'spouse' | 'child';

export interface Person {
  /** Global person number; ids derive from it. Absent relatives get one too, so their ids are never issued. */
  serial: number;
  memberId: string;
  sex: Sex;
  given: string;
  /** Further given names as the person writes them (full), or null. */
  middle: string | null;
  family: string;
  /** Jr, Sr… as the person uses it. */
  suffix: string | null;
  birthDate: string;
  relationship: Relationship;
  address: Address;
  phone: string | null;
  email: string | null;
  hispanic: boolean;
  // How the roster renders this person: payers lose suffixes, keep only an initial, leave gender blank.
  rosterMiddle: string | null;
  rosterSuffix: string | null;
  rosterGender: string;
}

export interface Coverage {
  coverageId: string;
  group: string;
  plan: string;
  periodStart: string;
  periodEnd: string;
}

export interface Household {
  serial: number;
  subscriberId: string;
  members: Person[];
  coverages: Coverage[];
  address: Address;
  phone: string;
  hispanic: boolean;
}

/** Serial numbers handed out to people and households; one counter per generated world. */
export interface Serials {
  person: number;
  household: number;
}

// Identifiers are a bijection of the serial (multiplication by a unit modulo 10^9), so they look random,
// never repeat, and an id built from a serial above every issued one is guaranteed never issued.
const ID_SPACE = 1_000_000_000;
/** (a · b + c) mod 10^9 without leaving exact double arithmetic (a, b < 10^9: split b into two halves). */
function scramble(serial: number, multiplier: number, offset: number): string {
  const high = Math.floor(multiplier / 100_000);
  const low = multiplier % 100_000;
  const product = (((serial * high) % ID_SPACE) * 100_000 + serial * low) % ID_SPACE;
  return String((product + offset) % ID_SPACE).padStart(9, '0');
}
export function memberIdFor(serial: number): string {
  return `M${scramble(serial, 618_033_989, 104_729)}`;
}
function subscriberIdFor(serial: number): string {
  return `S${scramble(serial, 314_159_267, 271_828)}`;
}
function coverageIdFor(serial: number, prefix: string): string {
  return `${prefix}${scramble(serial, 271_828_183, 314_159)}`;
}
/** A member id we never issued: the serial lies above any a generated world reaches. */
export function unissuedMemberId(rng: Rng): string {
  return memberIdFor(rng.int(ID_SPACE / 2, ID_SPACE - 1));
}

const PLANS = ['PPO500', 'PPO1K', 'HMO250', 'HMO500', 'EPO1K', 'HDHP3K', 'HDHP5K', 'POS750'];
const EMAIL_DOMAINS = ['example.com', 'example.org', 'example.net'];

export function drawAddress(rng: Rng, near?: Address): Address {
  const tables = nameTables();
  // Half of all moves stay in town; the rest go anywhere, by population.
  const city = near && rng.chance(0.5) ? undefined : tables.cities.sample(rng);
  const number =
    rng.next() < 0.3 ? rng.int(1, 99) : rng.next() < 0.6 ? rng.int(100, 999) : rng.int(1000, 9999);
  let line = `${number} ${rng.pick(tables.streets)} ${tables.streetSuffixes.sample(rng)}`;
  if (rng.chance(0.12)) line += rng.chance(0.6) ? ` Apt ${rng.int(1, 40)}` : ` Unit ${rng.int(1, 9)}${rng.pick(['A', 'B', 'C'])}`;
  if (!city && near) return { ...near, line };
  const [name, state, zip3, areaCode] = city as NonNullable<typeof city>;
  return { line, city: name, state, postalCode: `${zip3}${String(rng.int(0, 99)).padStart(2, '0')}`, areaCode };
}

/** NPA-555-XXXX: the 555 exchange keeps the numbers visibly fictional. */
export function drawPhone(rng: Rng, areaCode: string): string {
  return `${areaCode}-555-${String(rng.int(0, 9999)).padStart(4, '0')}`;
}

function emailLocal(text: string): string {
  return stripDiacritics(text)
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}

export function drawEmail(rng: Rng, given: string, family: string, birthDate: string): string {
  const g = emailLocal(given);
  const f = emailLocal(family.split(/[\s-]/)[0] ?? family);
  const local = choose(rng, {
    [`${g}.${f}`]: 4,
    [`${g.slice(0, 1)}${f}`]: 3,
    [`${g}${f}${birthDate.slice(2, 4)}`]: 2,
    [`${g}.${f}${rng.int(1, 99)}`]: 2,
  });
  return `${local}@${rng.pick(EMAIL_DOMAINS)}`;
}

/** Sometimes the accented spelling (José, Núñez): more often in Hispanic households. */
function maybeAccent(rng: Rng, name: string, hispanic: boolean): string {
  const parts = name.split(' ');
  return parts
    .map((part) => {
      const accented = accentedForm(part);
      return accented && rng.chance(hispanic ? 0.35 : 0.15) ? accented : part;
    })
    .join(' ');
}

function drawSuffixSpelling(rng: Rng, suffix: 'Jr' | 'Sr'): string {
  const roll = rng.next();
  return roll < 0.7 ? suffix : roll < 0.85 ? suffix.toUpperCase() : `${suffix}.`;
}

function drawAdultAge(rng: Rng): number {
  // Commercial and Medicare Advantage enrolment: mostly working age, a tail of retirees.
  const band = choose(rng, { young: 18, early: 30, middle: 35, senior: 17 });
  if (band === 'young') return rng.int(18, 29);
  if (band === 'early') return rng.int(30, 44);
  if (band === 'middle') return rng.int(45, 64);
  return rng.int(65, 92);
}

function birthDateForAge(rng: Rng, age: number): string {
  // Born in the year that gives this age on 1 January of the reference year (or a day later).
  return randomDateInYear(rng, REFERENCE_YEAR - 1 - age);
}

function otherSex(sex: Sex): Sex {
  return sex === 'male' ? 'female' : 'male';
}

/** A given name that none of `taken` already has (siblings are not named alike). */
function distinctGiven(rng: Rng, sex: Sex, birthYear: number, hispanic: boolean, taken: Iterable<string>): string {
  const avoid = new Set([...taken].map((n) => stripDiacritics(n).toUpperCase()));
  for (let i = 0; i < 20; i++) {
    const name = drawGivenName(rng, sex, birthYear, hispanic);
    if (!avoid.has(name.toUpperCase())) return name;
  }
  return drawGivenName(rng, sex, birthYear, hispanic);
}

interface NewPerson {
  sex: Sex;
  given: string;
  family: string;
  birthDate: string;
  relationship: Relationship;
  address: Address;
  hispanic: boolean;
  phone: string | null;
  email?: string | null;
  middle?: string | null;
}

/** Fills in ids and the roster's rendering of a person. */
export function makePerson(rng: Rng, serials: Serials, p: NewPerson): Person {
  const serial = serials.person++;
  const age = ageOf(p.birthDate);
  const middle =
    p.middle !== undefined
      ? p.middle
      : rng.chance(age >= 18 ? 0.45 : 0.35)
        ? distinctGiven(rng, p.sex, yearOf(p.birthDate), p.hispanic, [p.given])
        : null;
  const given = maybeAccent(rng, p.given, p.hispanic);
  const family = maybeAccent(rng, p.family, p.hispanic);
  const email =
    p.email !== undefined
      ? p.email
      : rng.chance(age >= 18 ? (p.relationship === 'self' ? 0.6 : 0.45) : 0.03)
        ? drawEmail(rng, given, family, p.birthDate)
        : null;
  const genderRoll = rng.next();
  return {
    serial,
    memberId: memberIdFor(serial),
    sex: p.sex,
    given,
    middle,
    family,
    suffix: null,
    birthDate: p.birthDate,
    relationship: p.relationship,
    address: p.address,
    phone: p.phone,
    email,
    hispanic: p.hispanic,
    // Some rosters keep only the middle initial.
    rosterMiddle: middle && rng.chance(0.15) ? middle.slice(0, 1) : middle,
    rosterSuffix: null,
    rosterGender: genderRoll < 0.985 ? p.sex : genderRoll < 0.993 ? '' : 'unknown',
  };
}

/** A family name for the subscriber: usually one surname; in Hispanic families sometimes two (García López). */
function drawFamilyName(rng: Rng, entry: SurnameEntry): string {
  if (entry.hispanic && rng.chance(0.2)) {
    const second = drawHispanicSurname(rng).name;
    if (second !== entry.name) return `${entry.name} ${second}`;
  }
  return entry.name;
}

function firstSurname(family: string): string {
  return family.split(/[\s-]/)[0] ?? family;
}

function drawCoverage(rng: Rng, serial: number, prefix: string, plan?: string): Coverage {
  const startYear = rng.int(2012, 2024);
  const startMonth = rng.int(1, 12);
  const periodStart = `${startYear}-${String(startMonth).padStart(2, '0')}-01`;
  let periodEnd = '';
  if (rng.chance(0.2)) {
    // Terminated: ends on the last day of a month one to five years later.
    const months = startYear * 12 + startMonth - 1 + rng.int(12, 60);
    const end = new Date(Date.UTC(Math.floor(months / 12), (months % 12) + 1, 0));
    periodEnd = end.toISOString().slice(0, 10);
  }
  return {
    coverageId: coverageIdFor(serial, prefix),
    group: `GRP${String(rng.int(1, 500)).padStart(3, '0')}`,
    plan: plan ?? rng.pick(PLANS),
    periodStart,
    periodEnd,
  };
}

/** The partner of a name in a similar-twin-names pair (Olivia → Oliver), with its sex. */
export function similarTwinName(given: string): [string, Sex] | undefined {
  const plain = stripDiacritics(given);
  for (const [a, b] of TWIN_NAME_PAIRS) {
    if (a[0] === plain) return b;
    if (b[0] === plain) return a;
  }
  return undefined;
}

/**
 * Name and sex for the second of twins. A quarter of the time the pair gets similar names (Olivia/Oliver,
 * Aiden/Jaden): when the first twin's name is not half of such a pair, the first twin is renamed to one that is.
 */
function secondTwin(rng: Rng, first: Person, hispanic: boolean): { given: string; sex: Sex } {
  if (rng.chance(0.25)) {
    const partner = similarTwinName(first.given);
    if (partner) return { given: partner[0], sex: partner[1] };
    const pairs = TWIN_NAME_PAIRS.filter(([a, b]) => a[1] === first.sex || b[1] === first.sex);
    const [a, b] = rng.pick(pairs);
    const [mine, theirs] = a[1] === first.sex ? [a, b] : [b, a];
    first.given = mine[0];
    return { given: theirs[0], sex: theirs[1] };
  }
  const sex: Sex = rng.chance(0.5) ? 'male' : 'female';
  return { given: distinctGiven(rng, sex, yearOf(first.birthDate), hispanic, [first.given]), sex };
}

/** Generates one household: subscriber, spouse, children, their contact data and coverages. */
export function makeHousehold(rng: Rng, serials: Serials): Household {
  const serial = serials.household++;
  const address = drawAddress(rng);
  const phone = drawPhone(rng, address.areaCode);
  const entry = drawSurname(rng);
  const hispanic = entry.hispanic;
  const members: Person[] = [];

  const selfSex: Sex = rng.chance(0.5) ? 'male' : 'female';
  const selfAge = drawAdultAge(rng);
  const selfBirth = birthDateForAge(rng, selfAge);
  const selfFamily = drawFamilyName(rng, entry);
  const self = makePerson(rng, serials, {
    sex: selfSex,
    given: drawGivenName(rng, selfSex, yearOf(selfBirth), hispanic),
    family: selfFamily,
    birthDate: selfBirth,
    relationship: 'self',
    address,
    hispanic,
    phone: rng.chance(0.9) ? phone : null,
  });
  members.push(self);

  const spouseChance = selfAge < 25 ? 0.15 : selfAge < 35 ? 0.5 : selfAge < 65 ? 0.62 : 0.5;
  let spouse: Person | undefined;
  if (rng.chance(spouseChance)) {
    const sex = rng.chance(0.95) ? otherSex(selfSex) : selfSex;
    const age = Math.max(18, selfAge + rng.int(-6, 6));
    const birth = birthDateForAge(rng, age);
    // Most spouses share the family name; some keep their own or join both with a hyphen.
    const own = hispanic ? drawFamilyName(rng, drawHispanicSurname(rng)) : drawSurname(rng).name;
    const style = choose(rng, hispanic ? { same: 40, own: 50, hyphen: 10 } : { same: 78, own: 15, hyphen: 7 });
    const family = style === 'same' ? selfFamily : style === 'own' ? own : `${firstSurname(own)}-${firstSurname(selfFamily)}`;
    spouse = makePerson(rng, serials, {
      sex,
      given: distinctGiven(rng, sex, yearOf(birth), hispanic, [self.given]),
      family,
      birthDate: birth,
      relationship: 'spouse',
      address,
      hispanic,
      phone: choose(rng, { own: 55, shared: 30, none: 15 }) === 'own' ? drawPhone(rng, address.areaCode) : rng.chance(0.66) ? phone : null,
    });
    members.push(spouse);
  }

  const childChance = selfAge < 20 || selfAge > 62 ? 0 : spouse ? 0.6 : 0.35;
  if (rng.chance(childChance)) {
    const count = Number(choose(rng, { 1: 40, 2: 38, 3: 15, 4: 5, 5: 2 }));
    const children: Person[] = [];
    for (let i = 0; i < count; i++) {
      const previous = children[children.length - 1];
      // About 3 % of births are twins; a few more here so that even small files hold some.
      const twinOf = previous !== undefined && rng.chance(0.05) ? previous : undefined;
      let birth: string;
      let sex: Sex = rng.chance(0.5) ? 'male' : 'female';
      let given: string;
      if (twinOf) {
        birth = twinOf.birthDate;
        ({ given, sex } = secondTwin(rng, twinOf, hispanic));
      } else {
        const age = selfAge - rng.int(20, 42);
        if (age < 0 || age > 25) continue;
        birth = birthDateForAge(rng, age);
        given = distinctGiven(rng, sex, yearOf(birth), hispanic, children.map((c) => c.given));
      }
      let family = selfFamily;
      if (spouse && spouse.family !== selfFamily) {
        const style = choose(rng, hispanic ? { both: 70, self: 30, spouse: 0, hyphen: 0 } : { both: 0, self: 80, spouse: 10, hyphen: 10 });
        if (style === 'both') family = `${firstSurname(selfFamily)} ${firstSurname(spouse.family)}`;
        if (style === 'spouse') family = spouse.family;
        if (style === 'hyphen') family = `${firstSurname(selfFamily)}-${firstSurname(spouse.family)}`;
      }
      const adult = ageOf(birth) >= 18;
      const child = makePerson(rng, serials, {
        sex,
        given,
        family: twinOf ? twinOf.family : family,
        birthDate: birth,
        relationship: 'child',
        address,
        hispanic,
        phone: adult ? (rng.chance(0.65) ? drawPhone(rng, address.areaCode) : null) : rng.chance(0.15) ? phone : null,
      });
      if (child.middle && stripDiacritics(child.middle) === stripDiacritics(child.given)) {
        child.middle = child.rosterMiddle = null;
      }
      children.push(child);
    }
    members.push(...children);

    // A son named after his father: the Jr/Sr pair. Some rosters never recorded the suffixes.
    const son = children.find((c) => c.sex === 'male' && !children.some((d) => d !== c && d.birthDate === c.birthDate));
    if (selfSex === 'male' && son && selfAge >= 36 && rng.chance(0.08)) {
      son.given = self.given;
      son.middle = self.middle;
      son.rosterMiddle = self.rosterMiddle;
      son.family = self.family;
      son.suffix = 'Jr';
      self.suffix = 'Sr';
      son.rosterSuffix = rng.chance(0.85) ? drawSuffixSpelling(rng, 'Jr') : null;
      self.rosterSuffix = rng.chance(0.65) ? drawSuffixSpelling(rng, 'Sr') : null;
    }
  }

  // Half the plans print the subscriber's own member id as the subscriber id, half a separate contract number.
  const subscriberId = rng.chance(0.5) ? self.memberId : subscriberIdFor(serial);
  const coverages = [drawCoverage(rng, serial, 'C')];
  if (rng.chance(0.1)) coverages.push(drawCoverage(rng, serial, 'D', 'DENTAL'));
  return { serial, subscriberId, members, coverages, address, phone, hispanic };
}

/** One roster CSV row per member and coverage, in the import's column names. */
export function rosterRows(household: Household, member: Person): Record<RosterColumn, string>[] {
  return household.coverages.map((coverage) => ({
    member_id: member.memberId,
    subscriber_id: household.subscriberId,
    relationship: member.relationship,
    given: member.given,
    middle: member.rosterMiddle ?? '',
    family: member.family,
    suffix: member.rosterSuffix ?? '',
    birth_date: member.birthDate,
    gender: member.rosterGender,
    address_line: member.address.line,
    city: member.address.city,
    state: member.address.state,
    postal_code: member.address.postalCode,
    phone: member.phone ?? '',
    email: member.email ?? '',
    coverage_id: coverage.coverageId,
    group: coverage.group,
    plan: coverage.plan,
    period_start: coverage.periodStart,
    period_end: coverage.periodEnd,
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// Absent relatives: people who belong with a household but are not in the index. They are the hard non-members.

export const RELATIVE_KINDS = ['twin', 'sibling', 'spouse', 'parent', 'jrsr'] as const;
export type RelativeKind = (typeof RELATIVE_KINDS)[number];

export interface AbsentRelative {
  person: Person;
  kind: RelativeKind;
  /** Lives at the household's address (and could plausibly hold its card). */
  sameHousehold: boolean;
}

function relativeBase(
  rng: Rng,
  serials: Serials,
  household: Household,
  anchor: Person,
  sex: Sex,
  birthDate: string,
  sameHousehold: boolean,
  family = anchor.family,
): Person {
  const address = sameHousehold ? household.address : drawAddress(rng);
  const adult = ageOf(birthDate) >= 18;
  const person = makePerson(rng, serials, {
    sex,
    given: distinctGiven(
      rng,
      sex,
      yearOf(birthDate),
      household.hispanic,
      household.members.map((m) => m.given),
    ),
    family,
    birthDate,
    relationship: 'child',
    address,
    hispanic: household.hispanic,
    phone: adult ? (rng.chance(0.8) ? drawPhone(rng, address.areaCode) : null) : sameHousehold && rng.chance(0.3) ? household.phone : null,
  });
  return person;
}

function tryTwin(rng: Rng, serials: Serials, household: Household, anchor: Person): AbsentRelative | null {
  const sameHousehold = anchor.relationship === 'child' ? true : rng.chance(0.15);
  const sex: Sex = rng.chance(0.5) ? 'male' : 'female';
  const person = relativeBase(rng, serials, household, anchor, sex, anchor.birthDate, sameHousehold);
  // Twins' names are often alike; the anchor keeps its name (it is already fixed), the twin takes the partner.
  const partner = similarTwinName(anchor.given);
  if (partner && rng.chance(0.5)) {
    [person.given, person.sex] = partner;
    person.rosterGender = partner[1];
  }
  return { person, kind: 'twin', sameHousehold };
}

function trySibling(rng: Rng, serials: Serials, household: Household, anchor: Person): AbsentRelative {
  const year = yearOf(anchor.birthDate);
  const gap = rng.int(1, 8) * (rng.chance(0.5) ? 1 : -1);
  const siblingYear = Math.min(REFERENCE_YEAR - 1, Math.max(1925, year + gap === year ? year + 1 : year + gap));
  const birth = randomDateInYear(rng, siblingYear === year ? year - 1 : siblingYear);
  const sameHousehold = anchor.relationship === 'child' && ageOf(birth) <= 25 && rng.chance(0.7);
  const sex: Sex = rng.chance(0.5) ? 'male' : 'female';
  return { person: relativeBase(rng, serials, household, anchor, sex, birth, sameHousehold), kind: 'sibling', sameHousehold };
}

function trySpouse(rng: Rng, serials: Serials, household: Household, anchor: Person): AbsentRelative | null {
  // The anchor's spouse, insured elsewhere: only for an adult without a spouse on the contract.
  const hasSpouse = household.members.some((m) => m.relationship === 'spouse');
  if (ageOf(anchor.birthDate) < 20 || anchor.relationship === 'spouse' || (anchor.relationship === 'self' && hasSpouse)) {
    return null;
  }
  const sex = rng.chance(0.95) ? otherSex(anchor.sex) : anchor.sex;
  const age = Math.max(18, ageOf(anchor.birthDate) + rng.int(-6, 6));
  const family = rng.chance(0.65) ? anchor.family : drawSurname(rng).name;
  // They live together, at the household's address (an adult child's spouse too, for simplicity).
  const person = relativeBase(rng, serials, household, anchor, sex, birthDateForAge(rng, age), true, family);
  return { person, kind: 'spouse', sameHousehold: true };
}

function tryParent(rng: Rng, serials: Serials, household: Household, anchor: Person): AbsentRelative | null {
  const adults = household.members.filter((m) => m.relationship !== 'child');
  if (anchor.relationship === 'child' && adults.length === 1) {
    // The other parent of a child on a single-parent contract.
    const present = adults[0] as Person;
    const age = Math.max(18, ageOf(present.birthDate) + rng.int(-6, 6));
    const family = rng.chance(0.5) ? anchor.family : drawSurname(rng).name;
    const sameHousehold = rng.chance(0.5);
    const person = relativeBase(rng, serials, household, anchor, otherSex(present.sex), birthDateForAge(rng, age), sameHousehold, family);
    return { person, kind: 'parent', sameHousehold };
  }
  if (anchor.relationship === 'child') return null;
  const parentYear = yearOf(anchor.birthDate) - rng.int(20, 40);
  if (parentYear < 1922) return null;
  const sex: Sex = rng.chance(0.5) ? 'male' : 'female';
  const family = sex === 'male' || rng.chance(0.5) ? anchor.family : drawSurname(rng).name;
  const sameHousehold = rng.chance(0.25);
  const person = relativeBase(rng, serials, household, anchor, sex, randomDateInYear(rng, parentYear), sameHousehold, family);
  return { person, kind: 'parent', sameHousehold };
}

function tryJrSr(rng: Rng, serials: Serials, household: Household, anchor: Person): AbsentRelative | null {
  // Father and son of one name: the anchor if he is a man not already half of such a pair, else such a man in
  // his household (the query is about a non-member either way).
  const eligible = (p: Person) => p.sex === 'male' && !p.suffix && (p.relationship !== 'child' || ageOf(p.birthDate) >= 18);
  const man = eligible(anchor) ? anchor : household.members.find(eligible);
  if (!man) return null;
  const age = ageOf(man.birthDate);
  const sonIsAbsent = age >= 38;
  const year = yearOf(man.birthDate) + (sonIsAbsent ? rng.int(20, 35) : -rng.int(20, 38));
  if (year >= REFERENCE_YEAR || year < 1922) return null;
  const birth = randomDateInYear(rng, year);
  const sameHousehold = sonIsAbsent ? ageOf(birth) <= 25 && rng.chance(0.6) : rng.chance(0.2);
  const person = relativeBase(rng, serials, household, man, 'male', birth, sameHousehold);
  person.given = man.given;
  person.middle = man.middle;
  person.rosterMiddle = man.middle;
  person.suffix = sonIsAbsent ? 'Jr' : 'Sr';
  person.rosterSuffix = person.suffix;
  man.suffix = sonIsAbsent ? 'Sr' : 'Jr';
  // Whether the roster knows the member is a Sr/Jr is a coin toss: his relative was never on the contract.
  man.rosterSuffix = rng.chance(0.5) ? drawSuffixSpelling(rng, man.suffix as 'Jr' | 'Sr') : null;
  return { person, kind: 'jrsr', sameHousehold };
}

/**
 * Builds the relative of `anchor` who is missing from the index. When the household cannot have that relative
 * (a married subscriber has no absent spouse; a woman no Jr), the next kind that fits is used; a sibling always
 * fits. The result says which kind it became.
 */
export function makeAbsentRelative(
  rng: Rng,
  serials: Serials,
  household: Household,
  anchor: Person,
  wanted: RelativeKind,
): AbsentRelative {
  const order: RelativeKind[] = [wanted, ...(['parent', 'spouse', 'twin', 'jrsr'] as const).filter((k) => k !== wanted)];
  for (const kindWanted of order) {
    const built =
      kindWanted === 'twin'
        ? tryTwin(rng, serials, household, anchor)
        : kindWanted === 'sibling'
          ? trySibling(rng, serials, household, anchor)
          : kindWanted === 'spouse'
            ? trySpouse(rng, serials, household, anchor)
            : kindWanted === 'parent'
              ? tryParent(rng, serials, household, anchor)
              : tryJrSr(rng, serials, household, anchor);
    if (built) return built;
  }
  return trySibling(rng, serials, household, anchor);
}

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Parameters } from 'fhir/r4.js';
import type { RosterDataColumn as RosterColumn } from '../../src/members/roster-format/columns.js';
import { randomDateInYear, yearOf } from './dates.js';
import { memberMatchParameters, type Card } from './fhir.js';
import { applyHazards, drawHazardCount, queryPersonOf } from './hazards.js';
import { drawGivenName } from './names.js';
import { ChunkedFileWriter, csvLine, ROSTER_HEADER, rosterLine, TRUTH_HEADER } from './output.js';
import {
  drawAddress,
  drawEmail,
  drawPhone,
  makeAbsentRelative,
  makeHousehold,
  makePerson,
  rosterRows,
  unissuedMemberId,
  type Household,
  type Person,
  type RelativeKind,
  type Serials,
} from './population.js';
import { choose, createRng, sampleDistinct, shuffle, type Rng } from './random.js';

/**
 * Deterministic synthetic evaluation data: an index roster (roster.csv, the import format), `$member-match`
 * queries (queries.ndjson) and the answer for each (truth.csv).
 *
 * How it works, in three passes that each draw from their own random stream:
 * 1. Plan: decide for every query whether it is about a member or a non-member, and which roster position
 *    ("ordinal") it hangs on. Non-members are mostly hard: the twin, sibling, spouse, parent or Jr/Sr
 *    counterpart of a member, or a namesake born the same year; the rest are strangers.
 * 2. Populate: generate households one at a time and stream their rows out. When a household holds a planned
 *    ordinal, keep that member (for a member query) or build the relative who is left out of the roster.
 *    Only these few people are held in memory, so a million members stream through in constant space.
 * 3. Query: for each planned query copy the person, apply hazards, attach a card, write the request and truth.
 *
 * Changing the number of queries does not reshuffle the households (the roster depends on members and seed),
 * except that a planned Jr/Sr non-member gives his namesake in the roster a suffix.
 */

export interface SyntheticOptions {
  members: number;
  queries: number;
  seed: number;
  /** Share of queries about people who are not in the roster. */
  nonMemberShare?: number;
  /** Share of member queries whose card identifier is usable (member id or subscriber id). */
  identifierShare?: number;
}

export interface SyntheticQuery {
  id: string;
  parameters: Parameters;
}

export interface TruthRow {
  queryId: string;
  /** The member the query is about; null when the person is not in the roster. */
  memberId: string | null;
  /** The perturbations applied, `+`-joined (`nickname+moved`), or `exact`. */
  hazard: string;
}

export type RosterRow = Record<RosterColumn, string>;

export interface SyntheticData {
  roster: RosterRow[];
  queries: SyntheticQuery[];
  truth: TruthRow[];
}

type NonMemberKind = RelativeKind | 'namesake' | 'stranger';

interface PlannedQuery {
  index: number;
  kind: 'member' | NonMemberKind;
  /** The roster ordinal the query hangs on (not for strangers). */
  ordinal?: number;
}

/** What the populate pass keeps for a query. */
interface Captured {
  person: Person;
  household: Household;
  /** For relatives: the kind actually built (a wanted kind may not fit the household). */
  kind: 'member' | NonMemberKind;
  sameHousehold: boolean;
}

// Non-members: about three quarters hard, one quarter strangers.
const NON_MEMBER_WEIGHTS: Record<NonMemberKind, number> = {
  twin: 18,
  jrsr: 12,
  sibling: 10,
  spouse: 10,
  parent: 10,
  namesake: 15,
  stranger: 25,
};

// People who never reach the roster number from here on, so their ids are never issued (roster serials stay
// below 300 million; see unissuedMemberId for the card ids above 500 million).
const RELATIVE_SERIALS = 300_000_000;
const STRANGER_SERIALS = 400_000_000;

function planQueries(rng: Rng, members: number, queries: number, nonMemberShare: number): PlannedQuery[] {
  const nonMembers = members === 0 ? queries : Math.round(queries * nonMemberShare);
  const kinds: PlannedQuery['kind'][] = [];
  for (let i = 0; i < queries - nonMembers; i++) kinds.push('member');
  for (let i = 0; i < nonMembers; i++) kinds.push(members === 0 ? 'stranger' : choose(rng, NON_MEMBER_WEIGHTS));
  shuffle(rng, kinds);

  // Member queries are about distinct members while there are enough; so are the anchors of non-members.
  const memberOrdinals = sampleDistinct(rng, members, kinds.filter((k) => k === 'member').length);
  const anchorOrdinals = sampleDistinct(rng, members, kinds.filter((k) => k !== 'member' && k !== 'stranger').length);
  return kinds.map((kind, index) => {
    if (kind === 'stranger') return { index, kind };
    const ordinal = kind === 'member' ? memberOrdinals.pop() : anchorOrdinals.pop();
    return { index, kind, ordinal: ordinal as number };
  });
}

/**
 * Pass 2: yields roster rows household by household, filling `captured` for the planned queries.
 */
function* populate(
  seed: Rng,
  members: number,
  plan: PlannedQuery[],
  captured: Map<number, Captured>,
): Generator<RosterRow, void, undefined> {
  const rng = seed.fork('population');
  const relativesRng = seed.fork('relatives');
  const serials: Serials = { person: 0, household: 0 };
  const relativeSerials: Serials = { person: RELATIVE_SERIALS, household: RELATIVE_SERIALS };
  const byOrdinal = new Map<number, PlannedQuery[]>();
  for (const q of plan) {
    if (q.ordinal === undefined) continue;
    const list = byOrdinal.get(q.ordinal) ?? [];
    list.push(q);
    byOrdinal.set(q.ordinal, list);
  }

  let ordinal = 0;
  while (ordinal < members) {
    const household = makeHousehold(rng, serials);
    // The last household may be cut short so the roster holds exactly `members` people.
    const kept = household.members.slice(0, members - ordinal);
    // Relatives first: building a Jr/Sr counterpart can give the member in the roster his suffix.
    for (const [offset, person] of kept.entries()) {
      for (const q of byOrdinal.get(ordinal + offset) ?? []) {
        if (q.kind === 'member' || q.kind === 'namesake' || q.kind === 'stranger') continue;
        const relative = makeAbsentRelative(relativesRng, relativeSerials, household, person, q.kind);
        captured.set(q.index, { person: relative.person, household, kind: relative.kind, sameHousehold: relative.sameHousehold });
      }
    }
    for (const [offset, person] of kept.entries()) {
      for (const q of byOrdinal.get(ordinal + offset) ?? []) {
        if (q.kind === 'member' || q.kind === 'namesake') captured.set(q.index, { person, household, kind: q.kind, sameHousehold: true });
      }
      yield* rosterRows(household, person);
    }
    ordinal += kept.length;
  }
}

/** Someone born the same year as `anchor` with the same given and family name, living elsewhere. */
function namesakeOf(rng: Rng, serials: Serials, anchor: Person): Person {
  const year = yearOf(anchor.birthDate);
  let birthDate = randomDateInYear(rng, year);
  while (birthDate === anchor.birthDate) birthDate = randomDateInYear(rng, year);
  const address = drawAddress(rng);
  const person = makePerson(rng, serials, {
    sex: anchor.sex,
    given: anchor.given,
    family: anchor.family,
    birthDate,
    relationship: 'self',
    address,
    hispanic: anchor.hispanic,
    phone: rng.chance(0.85) ? drawPhone(rng, address.areaCode) : null,
    middle: rng.chance(0.4) ? drawGivenName(rng, anchor.sex, year, anchor.hispanic) : null,
  });
  person.email = rng.chance(0.4) ? drawEmail(rng, person.given, person.family, birthDate) : null;
  return person;
}

/** A member of a fresh household that never reaches the roster. */
function strangerOf(rng: Rng, serials: Serials): { person: Person; household: Household } {
  const household = makeHousehold(rng, serials);
  return { person: rng.pick(household.members), household };
}

/** One digit of an id mistyped, or two neighbouring digits swapped (when they differ). */
function cardTypo(rng: Rng, id: string): string {
  if (rng.chance(0.5)) {
    const at = rng.int(1, id.length - 2);
    if (id[at] !== id[at + 1]) return id.slice(0, at) + id[at + 1] + id[at] + id.slice(at + 2);
  }
  const at = rng.int(1, id.length - 1);
  let digit = String(rng.int(0, 9));
  while (digit === id[at]) digit = String(rng.int(0, 9));
  return id.slice(0, at) + digit + id.slice(at + 1);
}

/**
 * Pass 3: the request and truth for one planned query. Each query draws from its own stream (forked by
 * index), so editing one hazard's logic does not shift every later query.
 */
function buildQuery(
  base: Rng,
  q: PlannedQuery,
  captured: Captured | undefined,
  identifierShare: number,
): { query: SyntheticQuery; truth: TruthRow } {
  const rng = base.fork(`q${q.index}`);
  const id = `q${String(q.index + 1).padStart(7, '0')}`;
  const strangerSerials: Serials = { person: STRANGER_SERIALS + q.index * 16, household: STRANGER_SERIALS + q.index };

  let person: Person;
  let household: Household;
  let kind = q.kind;
  let sameHousehold = false;
  if (q.kind === 'stranger') {
    ({ person, household } = strangerOf(rng, strangerSerials));
  } else {
    if (!captured) throw new Error(`query ${id}: its roster ordinal was never generated`);
    household = captured.household;
    kind = captured.kind;
    sameHousehold = captured.sameHousehold;
    person = q.kind === 'namesake' ? namesakeOf(rng, strangerSerials, captured.person) : captured.person;
  }

  const isMember = kind === 'member';
  const queryPerson = queryPersonOf(person);
  const tags = isMember ? [] : [`nonmember-${kind}`];
  tags.push(
    ...applyHazards(rng, queryPerson, drawHazardCount(rng, !isMember), { sex: person.sex, areaCode: person.address.areaCode }),
  );

  let card: Card;
  if (isMember && rng.chance(identifierShare)) {
    // What the card shows varies by plan: member id and subscriber id, member id only, or the subscriber id.
    const form = choose(rng, { both: 60, member: 25, subscriber: 15 });
    card =
      form === 'both'
        ? { identifier: person.memberId, subscriberId: household.subscriberId }
        : form === 'member'
          ? { identifier: person.memberId }
          : { identifier: household.subscriberId, subscriberId: household.subscriberId };
    if (rng.chance(0.06)) {
      card.identifier = cardTypo(rng, card.identifier);
      tags.push('card-typo');
    }
  } else if (!isMember && sameHousehold && rng.chance(0.3)) {
    // A relative at the member's address presents the family's card: a dependent dropped from the contract,
    // a spouse covered elsewhere. The card finds the household; only demographics can say "not this person".
    card = { identifier: household.subscriberId, subscriberId: household.subscriberId };
    tags.push('household-card');
  } else {
    card = { identifier: unissuedMemberId(rng) };
    if (isMember) tags.push('no-card');
  }

  const newCoverageId = `NP${String(rng.int(0, 99_999_999)).padStart(8, '0')}`;
  return {
    query: { id, parameters: memberMatchParameters(queryPerson, card, newCoverageId) },
    truth: { queryId: id, memberId: isMember ? person.memberId : null, hazard: tags.length > 0 ? tags.join('+') : 'exact' },
  };
}

type SynthEvent = { type: 'roster'; row: RosterRow } | { type: 'query'; query: SyntheticQuery; truth: TruthRow };

function* synthesize(options: SyntheticOptions): Generator<SynthEvent, void, undefined> {
  const { members, queries, seed } = options;
  const nonMemberShare = options.nonMemberShare ?? 0.25;
  const identifierShare = options.identifierShare ?? 0.5;
  if (!Number.isInteger(members) || members < 0 || !Number.isInteger(queries) || queries < 0) {
    throw new RangeError('members and queries must be non-negative integers');
  }
  if (members >= RELATIVE_SERIALS / 2) throw new RangeError(`at most ${RELATIVE_SERIALS / 2} members`);
  const root = createRng(seed);
  const plan = planQueries(root.fork('plan'), members, queries, nonMemberShare);
  const captured = new Map<number, Captured>();
  for (const row of populate(root, members, plan, captured)) yield { type: 'roster', row };
  const queryRng = root.fork('queries');
  for (const q of plan) yield { type: 'query', ...buildQuery(queryRng, q, captured.get(q.index), identifierShare) };
}

/** Everything in memory: for tests and small sets. */
export function generateSynthetic(options: SyntheticOptions): SyntheticData {
  const data: SyntheticData = { roster: [], queries: [], truth: [] };
  for (const event of synthesize(options)) {
    if (event.type === 'roster') data.roster.push(event.row);
    else {
      data.queries.push(event.query);
      data.truth.push(event.truth);
    }
  }
  return data;
}

export function truthLine(row: TruthRow): string {
  return csvLine([row.queryId, row.memberId ?? '', row.hazard]);
}

export function queryLine(query: SyntheticQuery): string {
  return `${JSON.stringify({ id: query.id, parameters: query.parameters })}\n`;
}

export interface SynthSummary {
  members: number;
  queries: number;
  nonMembers: number;
}

/** Streams roster.csv, queries.ndjson and truth.csv into `dir` (created if missing). */
export async function writeSynthetic(dir: string, options: SyntheticOptions): Promise<SynthSummary> {
  await mkdir(dir, { recursive: true });
  const roster = new ChunkedFileWriter(path.join(dir, 'roster.csv'));
  const queries = new ChunkedFileWriter(path.join(dir, 'queries.ndjson'));
  const truth = new ChunkedFileWriter(path.join(dir, 'truth.csv'));
  let memberCount = 0;
  let lastMember = '';
  let queryCount = 0;
  let nonMembers = 0;
  try {
    await roster.write(ROSTER_HEADER);
    await truth.write(TRUTH_HEADER);
    for (const event of synthesize(options)) {
      if (event.type === 'roster') {
        // Rows of one member are adjacent; counting distinct ids needs only the change points.
        if (event.row.member_id !== lastMember) {
          memberCount++;
          lastMember = event.row.member_id;
        }
        await roster.write(rosterLine(event.row));
      } else {
        queryCount++;
        if (event.truth.memberId === null) nonMembers++;
        await queries.write(queryLine(event.query));
        await truth.write(truthLine(event.truth));
      }
    }
  } finally {
    await Promise.all([roster.close(), queries.close(), truth.close()]);
  }
  return { members: memberCount, queries: queryCount, nonMembers };
}

/** The CLI's `synth` command: default shares, files into `out`. */
export async function runSynth(options: { members: number; queries: number; seed: number; out: string }): Promise<SynthSummary> {
  return writeSynthetic(options.out, { members: options.members, queries: options.queries, seed: options.seed });
}

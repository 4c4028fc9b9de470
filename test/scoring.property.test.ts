import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field } from '../src/matching/comparisons.js';
import { compareCandidate, decide, decideRanked, decideScored, extendRanking, rankCandidates, type Candidate } from '../src/matching/decide.js';
import type { MatchDecision } from '../src/matching/decision.js';
import { levelWeight, matchWeightOf, priorWeight, score, weightToProbability, type FieldExplanation, type MatchModel, type ModelParameters, type Score } from '../src/matching/model.js';
import { normalizePerson } from '../src/matching/normalize.js';
import type { NormalizedPerson, PersonFields } from '../src/matching/record.js';
import { DEFAULT_MODEL_FILE, readModelFile } from '../src/members/model-store.js';
import { handSetModel } from './support/model.js';

/**
 * Scoring was split (issue 13) into a match weight for every candidate and an explanation for the three a
 * decision keeps, with the level weights computed once per model. Decisions, probabilities and the audit
 * trail's explanations must not move by a bit: these properties hold the new code to the definitions it replaced.
 */

const shipped = readModelFile(DEFAULT_MODEL_FILE);
const models: MatchModel[] = [shipped, handSetModel];
const thresholds = { upper: 0.99, lower: 0.2, marginBits: 6 };

/** score() as it was written before the split: the reference the stored explanations were computed with. */
function referenceScore(parameters: ModelParameters, vector: ComparisonVector, query: NormalizedPerson): Score {
  const HOUSEHOLD = new Set<Field>(['family', 'address', 'phone', 'email', 'identifier']);
  const shared = (field: Field, level: string) => HOUSEHOLD.has(field) && !(field === 'identifier' && level === 'personal');
  const tf = (field: 'family' | 'given', name: string | undefined) => {
    if (!name) return 0;
    const uExact = parameters.fields[field].exact?.u;
    if (!uExact) return 0;
    const listed = parameters.termFrequencies[field][name];
    const adjustment = Math.log2(uExact / Math.max(listed ?? parameters.termFrequencies.floor, 1e-6));
    const bounded = listed === undefined ? Math.max(0, adjustment) : adjustment;
    return Math.max(-4, Math.min(4, bounded));
  };
  let matchWeight = priorWeight(parameters);
  const explanation: FieldExplanation[] = [];
  let strongest: FieldExplanation | undefined;
  for (const field of FIELDS) {
    const level = vector[field];
    let weight = levelWeight(parameters, field, level);
    if (level === 'exact' && field === 'family') weight += tf('family', query.family);
    if (level === 'exact' && field === 'given') weight += tf('given', query.given);
    const entry: FieldExplanation = { field, level, weight: Math.round(weight * 100) / 100 };
    explanation.push(entry);
    if (shared(field, level) && weight > 0) {
      if (!strongest || weight > strongest.weight) strongest = entry;
      continue;
    }
    matchWeight += weight;
  }
  for (const entry of explanation) {
    if (!shared(entry.field, entry.level) || entry.weight <= 0) continue;
    if (entry === strongest) matchWeight += entry.weight;
    else entry.discounted = true;
  }
  return { matchWeight, probability: weightToProbability(matchWeight), explanation };
}

/** decide() as it was: every candidate scored and explained, sorted, then the rule. */
function referenceDecide(model: MatchModel, query: NormalizedPerson, candidates: readonly Candidate[]): MatchDecision {
  const unique = new Map<string, Candidate>();
  for (const c of candidates) {
    const seen = unique.get(c.memberUuid);
    unique.set(c.memberUuid, seen ? { ...seen, cardHit: seen.cardHit || c.cardHit, cardPersonal: Boolean(seen.cardPersonal || c.cardPersonal) } : c);
  }
  const scored = [...unique.values()]
    .map((c) => {
      const vector = compareCandidate(query, c);
      const s = referenceScore(model.parameters, vector, query);
      return { memberUuid: c.memberUuid, memberId: c.memberId, cardHit: c.cardHit, probability: s.probability, matchWeight: s.matchWeight, explanation: s.explanation, vector };
    })
    .sort((a, b) => b.matchWeight - a.matchWeight || a.memberId.localeCompare(b.memberId));
  return decideScored(model.version, thresholds, scored);
}

const vectors: fc.Arbitrary<ComparisonVector> = fc.record(
  Object.fromEntries(FIELDS.map((field) => [field, fc.constantFrom(...FIELD_LEVELS[field])])) as { [F in Field]: fc.Arbitrary<ComparisonVector[F]> },
);
// Names the shipped model's term-frequency tables list (common and rare), and names they do not.
const listedFamily = Object.keys(shipped.parameters.termFrequencies.family).slice(0, 40);
const listedGiven = Object.keys(shipped.parameters.termFrequencies.given).slice(0, 40);
const queries: fc.Arbitrary<NormalizedPerson> = fc
  .record({ family: fc.constantFrom(...listedFamily, 'ZZYZX', ''), given: fc.constantFrom(...listedGiven, 'QUENTRYL', '') })
  .map(({ family, given }) => ({ ...normalizePerson({ family: 'X', given: 'Y', birthDate: '1980-01-01' }), family, given }));

describe('match weights without explanations', () => {
  it('matchWeightOf is score().matchWeight to the last bit, and score() is its old definition', () => {
    fc.assert(
      fc.property(fc.constantFrom(...models), vectors, queries, (model, vector, query) => {
        const s = score(model.parameters, vector, query);
        expect(Object.is(matchWeightOf(model.parameters, vector, query), s.matchWeight)).toBe(true);
        expect(s).toStrictEqual(referenceScore(model.parameters, vector, query));
      }),
      { numRuns: 3000 },
    );
  });
});

const people: fc.Arbitrary<PersonFields> = fc.record(
  {
    given: fc.constantFrom('Olivia', 'Oliver', 'Carlos', 'Olivai', 'Liv', 'Robert', 'Bob'),
    family: fc.constantFrom('Garcia', 'Garsia', 'Johnson', 'Smith'),
    suffix: fc.constantFrom('', 'Jr', 'Sr'),
    birthDate: fc.constantFrom('2015-06-14', '2015-06-15', '2015-14-06', '1980-03-12', '1950-03-12'),
    sex: fc.constantFrom('male', 'female'),
    addressLine: fc.constantFrom('5 Sample Street', '5 Sample St', '9 Elm Rd', ''),
    postalCode: fc.constantFrom('73301', '73302', ''),
    phone: fc.constantFrom('512-555-0101', '512-555-0199', ''),
    identifiers: fc.array(fc.constantFrom('G100', 'G101', 'H7'), { maxLength: 2 }),
  },
  { requiredKeys: ['given', 'family', 'birthDate'] },
);
const candidateLists = fc.array(fc.tuple(people, fc.boolean(), fc.boolean()), { maxLength: 12 }).map((rows) =>
  rows.map(([fields, cardHit, cardPersonal], i): Candidate => ({ memberUuid: `uuid-${i % 9}`, memberId: String(i % 9), person: normalizePerson(fields), cardHit, cardPersonal: cardHit && cardPersonal })),
);

describe('decisions on a ranking', () => {
  it('decide gives the decision of the old every-candidate-explained definition', () => {
    fc.assert(
      fc.property(fc.constantFrom(...models), people, candidateLists, (model, offered, candidates) => {
        const query = normalizePerson(offered);
        expect(decide(model, thresholds, query, candidates)).toStrictEqual(referenceDecide(model, query, candidates));
      }),
      { numRuns: 1500 },
    );
  });

  it('a second pass that extends the first ranking decides as ranking every candidate at once', () => {
    fc.assert(
      fc.property(fc.constantFrom(...models), people, candidateLists, fc.nat(12), (model, offered, candidates, cut) => {
        const query = normalizePerson(offered);
        // As the engine splits them: the first pass's members, then the wide blocks' members not among them.
        const first = candidates.slice(0, cut);
        const seen = new Set(first.map((c) => c.memberUuid));
        const added = candidates.slice(cut).filter((c) => !seen.has(c.memberUuid));
        const extended = decideRanked(model, thresholds, query, extendRanking(model, query, rankCandidates(model, query, first), added));
        expect(extended).toStrictEqual(referenceDecide(model, query, [...first, ...added]));
      }),
      { numRuns: 1500 },
    );
  });
});

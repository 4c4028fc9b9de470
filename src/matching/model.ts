import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field } from './comparisons.js';
import type { NormalizedPerson } from './record.js';

/**
 * A Fellegi–Sunter model: for each field and each comparison level, m = P(level | same person) and
 * u = P(level | different people); the level's match weight is log2(m/u). Missing levels weigh nothing.
 * Summed with the prior odds λ/(1−λ) they give the match weight of a pair, and its match probability.
 *
 * Term frequencies refine the exact name levels the way Splink does: agreeing on a name held by a fraction
 * `tf` of members is worth log2(u_exact / tf) more than the average exact agreement — positive for a rare
 * surname, negative for SMITH.
 */

export type LevelParameters = Record<string, { m: number; u: number }>;

export interface ModelParameters {
  /** Prior probability that a query/candidate pair drawn from the blocks is a match. */
  lambda: number;
  fields: Record<Field, LevelParameters>;
  termFrequencies: {
    family: Record<string, number>;
    given: Record<string, number>;
    /** Frequency assumed for a name absent from the table (rarer than any listed). */
    floor: number;
  };
}

export interface MatchModel {
  version: string;
  parameters: ModelParameters;
}

/** Keeps log weights finite when a level was never seen in training. */
const PROBABILITY_FLOOR = 1e-6;
/** Term-frequency adjustments are bounded: a single rare name must not outweigh a birth-date disagreement. */
const TF_ADJUSTMENT_LIMIT = 4;

export interface FieldExplanation {
  field: Field;
  level: string;
  /** log2(m/u) of the level, plus any term-frequency adjustment, in bits. */
  weight: number;
  /** A household field's agreement not counted because a stronger household agreement was (see score). */
  discounted?: true;
}

/**
 * Fields a whole household shares: family name, address, phone, e-mail, the subscriber id on the card.
 * Fellegi–Sunter treats fields as independent given match status; within a household they agree *together*
 * for spouses, children, twins and parents, so summing their agreements counts one fact — "same household" —
 * four or five times, and a parent's record outscores a typo'd match. Their disagreements are summed (each is
 * evidence), but of their agreements only the strongest counts.
 */
export const HOUSEHOLD_FIELDS: ReadonlySet<Field> = new Set<Field>(['family', 'address', 'phone', 'email', 'identifier']);

/**
 * A household field's level that is nonetheless the person's own: a card value no other member holds. It is
 * summed like a person-level field rather than folded into the household's one agreement.
 */
function sharedByHousehold(field: Field, level: string): boolean {
  return HOUSEHOLD_FIELDS.has(field) && !(field === 'identifier' && level === 'personal');
}

export interface Score {
  /** Sum of the prior log-odds and all field weights, in bits. */
  matchWeight: number;
  probability: number;
  explanation: FieldExplanation[];
}

export function levelWeight(parameters: ModelParameters, field: Field, level: string): number {
  if (level === 'missing') return 0;
  // A model trained before a field or level existed gives it no weight rather than failing.
  const p = parameters.fields[field]?.[level];
  if (!p) return 0;
  return Math.log2(Math.max(p.m, PROBABILITY_FLOOR) / Math.max(p.u, PROBABILITY_FLOOR));
}

function tfAdjustment(parameters: ModelParameters, field: 'family' | 'given', name: string | undefined): number {
  if (!name) return 0;
  const uExact = parameters.fields[field].exact?.u;
  if (!uExact) return 0;
  const listed = parameters.termFrequencies[field][name];
  const adjustment = Math.log2(uExact / Math.max(listed ?? parameters.termFrequencies.floor, PROBABILITY_FLOOR));
  // A name absent from the table is rarer than any listed: it never counts against a match. (In an index of a
  // few hundred members the floor, one member's share, exceeds the average chance agreement, and would.)
  const bounded = listed === undefined ? Math.max(0, adjustment) : adjustment;
  return Math.max(-TF_ADJUSTMENT_LIMIT, Math.min(TF_ADJUSTMENT_LIMIT, bounded));
}

export function priorWeight(parameters: ModelParameters): number {
  return Math.log2(parameters.lambda / (1 - parameters.lambda));
}

/**
 * A model's level weights and prior, computed once per parameter set: scoring a candidate then only looks
 * them up (a request scores tens of candidates, a roster job millions). Keyed by the parameters object, which
 * a loaded model never changes.
 */
interface WeightTable {
  prior: number;
  levels: Record<Field, Map<string, number>>;
}
const weightTables = new WeakMap<ModelParameters, WeightTable>();

function weightTable(parameters: ModelParameters): WeightTable {
  let table = weightTables.get(parameters);
  if (!table) {
    const levels = {} as Record<Field, Map<string, number>>;
    for (const field of FIELDS) {
      // Every level a comparison can give, and every level the model names (levelWeight decides each the same).
      const names = new Set<string>([...FIELD_LEVELS[field], ...Object.keys(parameters.fields[field] ?? {})]);
      levels[field] = new Map([...names].map((level) => [level, levelWeight(parameters, field, level)]));
    }
    table = { prior: priorWeight(parameters), levels };
    weightTables.set(parameters, table);
  }
  return table;
}

/** The weight a field's level carries for this query: its level weight, plus the name's term-frequency adjustment. */
function fieldWeight(parameters: ModelParameters, table: WeightTable, field: Field, level: string, query: NormalizedPerson): number {
  let weight = table.levels[field].get(level) ?? levelWeight(parameters, field, level);
  if (level === 'exact' && field === 'family') weight += tfAdjustment(parameters, 'family', query.family);
  if (level === 'exact' && field === 'given') weight += tfAdjustment(parameters, 'given', query.given);
  return weight;
}

/** A weight as the explanation shows it, in hundredths of a bit. */
function shown(weight: number): number {
  return Math.round(weight * 100) / 100;
}

export function score(parameters: ModelParameters, vector: ComparisonVector, query: NormalizedPerson): Score {
  const table = weightTable(parameters);
  let matchWeight = table.prior;
  const explanation: FieldExplanation[] = [];
  let strongestHousehold: FieldExplanation | undefined;
  for (const field of FIELDS) {
    const level = vector[field];
    const weight = fieldWeight(parameters, table, field, level, query);
    const entry: FieldExplanation = { field, level, weight: shown(weight) };
    explanation.push(entry);
    if (sharedByHousehold(field, level) && weight > 0) {
      if (!strongestHousehold || weight > strongestHousehold.weight) strongestHousehold = entry;
      continue;
    }
    matchWeight += weight;
  }
  for (const entry of explanation) {
    if (!sharedByHousehold(entry.field, entry.level) || entry.weight <= 0) continue;
    if (entry === strongestHousehold) matchWeight += entry.weight;
    else entry.discounted = true;
  }
  return { matchWeight, probability: weightToProbability(matchWeight), explanation };
}

/**
 * {@link score}'s match weight alone, without building the explanation: the same sums in the same order, so
 * the same number to the last bit (a property test holds the two together). Every candidate is ranked by it;
 * only the few a decision keeps are explained.
 */
export function matchWeightOf(parameters: ModelParameters, vector: ComparisonVector, query: NormalizedPerson): number {
  const table = weightTable(parameters);
  let matchWeight = table.prior;
  let strongestHousehold: number | undefined;
  for (const field of FIELDS) {
    const level = vector[field];
    const weight = fieldWeight(parameters, table, field, level, query);
    if (sharedByHousehold(field, level) && weight > 0) {
      // Compared as score() compares them: this weight against the strongest one's shown (rounded) weight.
      if (strongestHousehold === undefined || weight > strongestHousehold) strongestHousehold = shown(weight);
      continue;
    }
    matchWeight += weight;
  }
  if (strongestHousehold !== undefined && strongestHousehold > 0) matchWeight += strongestHousehold;
  return matchWeight;
}

export function weightToProbability(matchWeight: number): number {
  const odds = 2 ** matchWeight;
  return Number.isFinite(odds) ? odds / (1 + odds) : 1;
}

/** Every level of every field present, m and u in (0, 1), each summing to about 1 over non-missing levels. */
export function validateParameters(parameters: ModelParameters): string[] {
  const problems: string[] = [];
  if (!(parameters.lambda > 0 && parameters.lambda < 1)) problems.push('lambda must be in (0, 1)');
  for (const field of FIELDS) {
    const levels = parameters.fields[field];
    if (!levels) {
      problems.push(`${field}: missing`);
      continue;
    }
    for (const level of FIELD_LEVELS[field]) {
      if (level === 'missing') continue;
      const p = levels[level];
      if (!p || !(p.m >= 0 && p.m <= 1 && p.u >= 0 && p.u <= 1)) problems.push(`${field}.${level}: m and u must be in [0, 1]`);
    }
  }
  return problems;
}

import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field } from './record.js';
import type { LevelParameters, ModelParameters } from './model.js';

/**
 * Parameter estimation in Splink's manner:
 *  - u from comparisons of *random* member pairs (almost all non-matches), so u is the chance agreement;
 *  - m by expectation–maximisation over *blocked* pairs (where matches are common enough to learn from),
 *    with u held fixed, as Splink does;
 *  - or m straight from labelled matching pairs when a truth file is available.
 * All estimates are smoothed (a pseudo-count per level) so a level unseen in training keeps a finite weight.
 */

const PSEUDO_COUNT = 0.5;

export type LevelProbabilities = Record<Field, Record<string, number>>;

/** Share of each level among the pairs where the field is present on both sides, weighted. */
export function levelFrequencies(vectors: readonly ComparisonVector[], weights?: readonly number[]): LevelProbabilities {
  const result = {} as LevelProbabilities;
  for (const field of FIELDS) {
    const counts: Record<string, number> = {};
    for (const level of FIELD_LEVELS[field]) if (level !== 'missing') counts[level] = PSEUDO_COUNT;
    vectors.forEach((vector, i) => {
      const level = vector[field];
      if (level !== 'missing') counts[level] = (counts[level] ?? 0) + (weights ? weights[i]! : 1);
    });
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    result[field] = Object.fromEntries(Object.entries(counts).map(([level, n]) => [level, n / total]));
  }
  return result;
}

export function combine(m: LevelProbabilities, u: LevelProbabilities): Record<Field, LevelParameters> {
  const fields = {} as Record<Field, LevelParameters>;
  for (const field of FIELDS) {
    fields[field] = Object.fromEntries(
      Object.keys(u[field]).map((level) => [level, { m: round(m[field][level] ?? 0), u: round(u[field][level] ?? 0) }]),
    );
  }
  return fields;
}

/** Starting m values: what a careful person would guess, so EM starts on the right side of the mixture. */
export function initialM(): LevelProbabilities {
  const guess: Partial<Record<Field, Record<string, number>>> = {
    given: { exact: 0.8, nickname: 0.05, 'jw-high': 0.05, phonetic: 0.03, swapped: 0.02, initial: 0.02, different: 0.03 },
    family: { exact: 0.85, part: 0.04, 'jw-high': 0.04, phonetic: 0.02, different: 0.05 },
    birthDate: { exact: 0.9, transposed: 0.03, 'one-digit': 0.04, 'year-off-by-one': 0.01, different: 0.02 },
    sex: { agree: 0.97, different: 0.03 },
    suffix: { agree: 0.9, different: 0.1 },
    address: { 'street-and-zip': 0.7, zip: 0.1, different: 0.2 },
    phone: { exact: 0.7, different: 0.3 },
    email: { exact: 0.7, different: 0.3 },
    identifier: { exact: 0.8, different: 0.2 },
  };
  return guess as LevelProbabilities;
}

export interface EmResult {
  m: LevelProbabilities;
  lambda: number;
  iterations: number;
  converged: boolean;
}

/**
 * EM with u fixed. E-step: each pair's posterior match probability under the current m and λ. M-step: m is
 * the posterior-weighted level frequency, λ the mean posterior. Stops when no m or λ moves by 1e-5.
 */
export function expectationMaximisation(
  vectors: readonly ComparisonVector[],
  u: LevelProbabilities,
  options: { lambda?: number; maxIterations?: number } = {},
): EmResult {
  let m = initialM();
  let lambda = options.lambda ?? 0.1;
  const maxIterations = options.maxIterations ?? 50;
  const posteriors = new Array<number>(vectors.length);
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    vectors.forEach((vector, i) => {
      let logOdds = Math.log(lambda / (1 - lambda));
      for (const field of FIELDS) {
        const level = vector[field];
        if (level === 'missing') continue;
        logOdds += Math.log(Math.max(m[field][level] ?? 0, 1e-9) / Math.max(u[field][level] ?? 0, 1e-9));
      }
      posteriors[i] = 1 / (1 + Math.exp(-logOdds));
    });
    const nextM = levelFrequencies(vectors, posteriors);
    const nextLambda = Math.min(Math.max(posteriors.reduce((a, b) => a + b, 0) / Math.max(vectors.length, 1), 1e-6), 1 - 1e-6);
    const change = Math.max(Math.abs(nextLambda - lambda), ...FIELDS.flatMap((f) => Object.keys(nextM[f]).map((l) => Math.abs(nextM[f][l]! - (m[f][l] ?? 0)))));
    m = nextM;
    lambda = nextLambda;
    if (change < 1e-5) return { m, lambda, iterations: iteration, converged: true };
  }
  return { m, lambda, iterations: maxIterations, converged: false };
}

/** Relative frequency of each name, kept for names held by at least `minCount` members (the rest use the floor). */
export function termFrequencies(counts: ReadonlyMap<string, number>, total: number, minCount = 2): { table: Record<string, number>; floor: number } {
  const table: Record<string, number> = {};
  for (const [name, count] of counts) if (count >= minCount) table[name] = round(count / total);
  return { table, floor: round(1 / Math.max(total, 1)) };
}

export function buildParameters(
  m: LevelProbabilities,
  u: LevelProbabilities,
  lambda: number,
  tf: { family: { table: Record<string, number>; floor: number }; given: { table: Record<string, number>; floor: number } },
): ModelParameters {
  return {
    lambda: round(lambda),
    fields: combine(m, u),
    termFrequencies: { family: tf.family.table, given: tf.given.table, floor: Math.min(tf.family.floor, tf.given.floor) },
  };
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}

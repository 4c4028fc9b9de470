import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field } from './comparisons.js';
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
    given: { exact: 0.8, nickname: 0.05, 'jw-high': 0.04, 'one-edit': 0.02, phonetic: 0.02, similar: 0.01, swapped: 0.02, initial: 0.01, different: 0.03 },
    middle: { exact: 0.8, initial: 0.1, different: 0.1 },
    family: { exact: 0.85, part: 0.04, 'jw-high': 0.03, 'one-edit': 0.01, phonetic: 0.02, exchanged: 0.01, different: 0.04 },
    birthDate: { exact: 0.9, transposed: 0.03, 'one-digit': 0.03, 'ten-years': 0.005, 'decade-digit': 0.005, 'year-off-by-one': 0.01, different: 0.02 },
    sex: { agree: 0.97, different: 0.03 },
    suffix: { agree: 0.9, different: 0.1 },
    address: { 'street-and-zip': 0.6, 'street-near-and-zip': 0.05, street: 0.05, zip: 0.08, locality: 0.04, 'zip-near': 0.02, different: 0.16 },
    phone: { exact: 0.7, different: 0.3 },
    email: { exact: 0.7, different: 0.3 },
    identifier: { personal: 0.5, household: 0.3, 'one-substitution': 0.03, transposition: 0.02, different: 0.15 },
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
 * EM with u fixed, over the given fields only. E-step: each pair's posterior match probability under the
 * current m and λ. M-step: m is the posterior-weighted level frequency, λ the mean posterior. Stops when no m
 * or λ moves by 1e-5.
 */
export function expectationMaximisation(
  vectors: readonly ComparisonVector[],
  u: LevelProbabilities,
  options: { lambda?: number; maxIterations?: number; fields?: readonly Field[]; m?: LevelProbabilities; fixM?: boolean } = {},
): EmResult {
  const fields = options.fields ?? FIELDS;
  let m = options.m ?? initialM();
  let lambda = options.lambda ?? 0.1;
  const maxIterations = options.maxIterations ?? 100;
  const posteriors = new Array<number>(vectors.length);
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    vectors.forEach((vector, i) => {
      let logOdds = Math.log(lambda / (1 - lambda));
      for (const field of fields) {
        const level = vector[field];
        if (level === 'missing') continue;
        logOdds += Math.log(Math.max(m[field][level] ?? 0, 1e-9) / Math.max(u[field][level] ?? 0, 1e-9));
      }
      posteriors[i] = 1 / (1 + Math.exp(-logOdds));
    });
    const nextLambda = Math.min(Math.max(posteriors.reduce((a, b) => a + b, 0) / Math.max(vectors.length, 1), 1e-6), 1 - 1e-6);
    let change = Math.abs(nextLambda - lambda);
    if (!options.fixM) {
      const estimated = levelFrequencies(vectors, posteriors);
      const nextM = { ...m };
      for (const field of fields) {
        nextM[field] = estimated[field];
        for (const level of Object.keys(estimated[field])) change = Math.max(change, Math.abs(estimated[field][level]! - (m[field][level] ?? 0)));
      }
      m = nextM;
    }
    lambda = nextLambda;
    if (change < 1e-5) return { m, lambda, iterations: iteration, converged: true };
  }
  return { m, lambda, iterations: maxIterations, converged: false };
}

/** The fields a blocking-key kind makes agree: EM cannot learn their m from pairs found through that block. */
export const BLOCK_FIELDS: Record<string, readonly Field[]> = {
  d: ['birthDate'],
  fy: ['family', 'birthDate'],
  gz: ['given', 'address'],
  gf: ['given', 'family'],
  fz: ['family', 'address'],
  gm: ['given', 'birthDate'],
  p: ['phone'],
  e: ['email'],
  card: ['identifier'],
};

/** EM sessions in Splink's manner: each runs on the pairs one block kind found, and estimates the other fields. */
export const TRAINING_SESSIONS = ['d', 'gf'] as const;

export interface BlockedPair {
  vector: ComparisonVector;
  /** Kinds of the blocks (and `card`) through which this pair was found. */
  kinds: ReadonlySet<string>;
}

export interface SessionReport {
  session: string;
  pairs: number;
  lambda: number;
  iterations: number;
  converged: boolean;
}

/**
 * Splink's training loop. Blocking makes the blocked fields agree on non-matches too, so EM over all
 * blocked pairs at once mistakes every blocked pair for a match (λ → 1). Instead each session takes the pairs
 * found through one block kind, holds that block's fields out, and estimates m for the rest; a field's m is
 * the mean over the sessions that estimated it. λ, the prior over all blocked pairs, is then fitted with m and
 * u held fixed.
 */
export function trainBySessions(pairs: readonly BlockedPair[], u: LevelProbabilities): { m: LevelProbabilities; lambda: number; sessions: SessionReport[] } {
  const sums = {} as Record<Field, Record<string, number>>;
  const counts = {} as Record<Field, number>;
  const sessions: SessionReport[] = [];
  for (const session of TRAINING_SESSIONS) {
    const held = new Set(BLOCK_FIELDS[session]);
    const fields = FIELDS.filter((f) => !held.has(f));
    const vectors = pairs.filter((p) => p.kinds.has(session)).map((p) => p.vector);
    if (vectors.length === 0) continue;
    const result = expectationMaximisation(vectors, u, { fields, lambda: 0.2 });
    sessions.push({ session, pairs: vectors.length, lambda: result.lambda, iterations: result.iterations, converged: result.converged });
    for (const field of fields) {
      sums[field] ??= {};
      counts[field] = (counts[field] ?? 0) + 1;
      for (const [level, value] of Object.entries(result.m[field])) sums[field][level] = (sums[field][level] ?? 0) + value;
    }
  }
  const initial = initialM();
  const m = {} as LevelProbabilities;
  for (const field of FIELDS) {
    m[field] = sums[field] ? Object.fromEntries(Object.entries(sums[field]).map(([level, sum]) => [level, sum / counts[field]!])) : initial[field];
  }
  const all = expectationMaximisation(pairs.map((p) => p.vector), u, { m, fixM: true, lambda: 0.1 });
  sessions.push({ session: 'lambda', pairs: pairs.length, lambda: all.lambda, iterations: all.iterations, converged: all.converged });
  return { m, lambda: all.lambda, sessions };
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

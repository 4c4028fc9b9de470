import { FIELD_LEVELS, type Field } from './comparisons.js';
import type { DecisionThresholds } from './decision.js';
import { HOUSEHOLD_FIELDS, levelWeight, priorWeight, type ModelParameters } from './model.js';

/**
 * What a model's thresholds mean in error rates, computed from the model itself (Splink reports the same from
 * m and u): for a pair compared on the fields every HRex request carries (given and family name, birth date,
 * sex, address), the chance that a pair of *different* people reaches a threshold — drawn level by level from
 * u — and the chance that a *true* pair does — drawn from m. Exact under Fellegi–Sunter's independence
 * assumption (every combination of levels is enumerated, with the scorer's household rule: of family and
 * address, only the stronger agreement counts), and before the person-level gate, which only removes
 * auto-matches. A trained model is activated only when these pass (see `checkModel`).
 */

/** The fields every $member-match request carries (HRex requires name, birth date and gender; address is usual). */
export const CORE_FIELDS: readonly Field[] = ['given', 'family', 'birthDate', 'sex', 'address'];

export interface ThresholdErrorRates {
  probability: number;
  /** The threshold as a match weight, in bits. */
  matchWeight: number;
  /** P(match weight ≥ threshold | different people), per compared pair. */
  falsePositivePerPair: number;
  /** P(match weight ≥ threshold | same person), per true pair. */
  truePairRecall: number;
}

export interface ModelCheck {
  check: string;
  passed: boolean;
  detail: string;
}

export interface ModelDiagnostics {
  fields: readonly Field[];
  upper: ThresholdErrorRates;
  lower: ThresholdErrorRates;
  checks: ModelCheck[];
  passed: boolean;
}

/** Limits a model must meet to be activated. */
export const DIAGNOSTIC_LIMITS = {
  /** At most one in a million pairs of different people reaches auto-match on the core fields alone. */
  maxFalsePositivePerPairAtUpper: 1e-6,
  /** At least 90 % of true pairs reach review on the core fields alone. */
  minTruePairRecallAtLower: 0.9,
} as const;

type Side = 'm' | 'u';

/** Each level's weight and its probability under m or u, normalised over the non-missing levels. */
function levelTable(parameters: ModelParameters, field: Field, side: Side): { level: string; weight: number; p: number }[] {
  const levels = FIELD_LEVELS[field].filter((l) => l !== 'missing');
  const raw = levels.map((level) => parameters.fields[field]?.[level]?.[side] ?? 0);
  const total = raw.reduce((a, b) => a + b, 0) || 1;
  return levels.map((level, i) => ({ level, weight: levelWeight(parameters, field, level), p: raw[i]! / total }));
}

/** P(total weight ≥ t) for each t, under one side, enumerating every combination of the core fields' levels. */
function tailProbabilities(parameters: ModelParameters, side: Side, thresholds: readonly number[]): number[] {
  const tables = CORE_FIELDS.map((field) => ({ field, rows: levelTable(parameters, field, side) }));
  const tails = thresholds.map(() => 0);
  const prior = priorWeight(parameters);
  const walk = (i: number, p: number, personal: number, household: { positive: number; negative: number }) => {
    if (p === 0) return;
    if (i === tables.length) {
      const total = prior + personal + household.negative + household.positive;
      thresholds.forEach((t, k) => {
        if (total >= t) tails[k]! += p;
      });
      return;
    }
    const { field, rows } = tables[i]!;
    for (const row of rows) {
      if (HOUSEHOLD_FIELDS.has(field)) {
        const next = row.weight > 0 ? { positive: Math.max(household.positive, row.weight), negative: household.negative } : { positive: household.positive, negative: household.negative + row.weight };
        walk(i + 1, p * row.p, personal, next);
      } else {
        walk(i + 1, p * row.p, personal + row.weight, household);
      }
    }
  };
  walk(0, 1, 0, { positive: 0, negative: 0 });
  return tails;
}

const bits = (probability: number) => Math.log2(probability / (1 - probability));

export function errorRates(parameters: ModelParameters, thresholds: DecisionThresholds): Pick<ModelDiagnostics, 'upper' | 'lower'> {
  const weights = [bits(thresholds.upper), bits(thresholds.lower)];
  const fp = tailProbabilities(parameters, 'u', weights);
  const recall = tailProbabilities(parameters, 'm', weights);
  const at = (k: number, probability: number): ThresholdErrorRates => ({ probability, matchWeight: weights[k]!, falsePositivePerPair: fp[k]!, truePairRecall: recall[k]! });
  return { upper: at(0, thresholds.upper), lower: at(1, thresholds.lower) };
}

/**
 * The checks a model must pass before it is activated: agreement on each core identity field is evidence
 * for a match and disagreement against it (m > u, and the reverse); EM converged in every session; and the
 * thresholds' estimated error rates are within DIAGNOSTIC_LIMITS.
 */
export function checkModel(
  parameters: ModelParameters,
  thresholds: DecisionThresholds,
  sessions: readonly { session: string; converged: boolean }[] = [],
): ModelDiagnostics {
  const rates = errorRates(parameters, thresholds);
  const checks: ModelCheck[] = [];
  for (const field of ['given', 'family', 'birthDate'] as const) {
    const exact = parameters.fields[field]?.exact;
    const different = parameters.fields[field]?.different;
    checks.push({
      check: `${field}: agreement is evidence for, disagreement against`,
      passed: !!exact && !!different && exact.m > exact.u && different.m < different.u,
      detail: `exact m ${exact?.m} u ${exact?.u}; different m ${different?.m} u ${different?.u}`,
    });
  }
  for (const s of sessions) checks.push({ check: `EM session ${s.session} converged`, passed: s.converged, detail: s.converged ? 'converged' : 'stopped at the iteration limit' });
  checks.push({
    check: 'false positives per pair at the upper threshold',
    passed: rates.upper.falsePositivePerPair <= DIAGNOSTIC_LIMITS.maxFalsePositivePerPairAtUpper,
    detail: `${rates.upper.falsePositivePerPair.toExponential(2)} (limit ${DIAGNOSTIC_LIMITS.maxFalsePositivePerPairAtUpper})`,
  });
  checks.push({
    check: 'true pairs reaching review at the lower threshold',
    passed: rates.lower.truePairRecall >= DIAGNOSTIC_LIMITS.minTruePairRecallAtLower,
    detail: `${(rates.lower.truePairRecall * 100).toFixed(2)} % (limit ${DIAGNOSTIC_LIMITS.minTruePairRecallAtLower * 100} %)`,
  });
  return { fields: CORE_FIELDS, ...rates, checks, passed: checks.every((c) => c.passed) };
}

import type { MatchModel, ModelParameters } from '../../src/matching/model.js';

/**
 * A hand-set model with weights in the ranges published configurations use (matching.md): tests of the
 * decision logic should not depend on a trained file.
 */
const fields: ModelParameters['fields'] = {
  given: { exact: { m: 0.85, u: 0.005 }, nickname: { m: 0.04, u: 0.002 }, 'jw-high': { m: 0.04, u: 0.003 }, 'one-edit': { m: 0.02, u: 0.002 }, phonetic: { m: 0.02, u: 0.01 }, swapped: { m: 0.01, u: 0.002 }, initial: { m: 0.01, u: 0.02 }, different: { m: 0.03, u: 0.958 } },
  middle: { exact: { m: 0.8, u: 0.05 }, initial: { m: 0.1, u: 0.05 }, different: { m: 0.1, u: 0.9 } },
  family: { exact: { m: 0.85, u: 0.003 }, part: { m: 0.05, u: 0.001 }, 'jw-high': { m: 0.04, u: 0.003 }, 'one-edit': { m: 0.01, u: 0.001 }, phonetic: { m: 0.02, u: 0.01 }, different: { m: 0.04, u: 0.983 } },
  birthDate: { exact: { m: 0.9, u: 0.0001 }, transposed: { m: 0.03, u: 0.0001 }, 'one-digit': { m: 0.03, u: 0.002 }, 'decade-digit': { m: 0.01, u: 0.0005 }, 'year-off-by-one': { m: 0.01, u: 0.0003 }, different: { m: 0.02, u: 0.9975 } },
  sex: { agree: { m: 0.98, u: 0.5 }, different: { m: 0.02, u: 0.5 } },
  suffix: { agree: { m: 0.95, u: 0.6 }, different: { m: 0.05, u: 0.4 } },
  address: { 'street-and-zip': { m: 0.7, u: 0.0005 }, zip: { m: 0.1, u: 0.01 }, different: { m: 0.2, u: 0.9895 } },
  phone: { exact: { m: 0.7, u: 0.0005 }, different: { m: 0.3, u: 0.9995 } },
  email: { exact: { m: 0.7, u: 0.0001 }, different: { m: 0.3, u: 0.9999 } },
  identifier: { personal: { m: 0.5, u: 0.00001 }, household: { m: 0.3, u: 0.0005 }, 'one-substitution': { m: 0.03, u: 0.001 }, transposition: { m: 0.02, u: 0.0005 }, different: { m: 0.15, u: 0.998 } },
};

export const handSetModel: MatchModel = {
  version: 'test-hand-set',
  parameters: { lambda: 0.01, fields, termFrequencies: { family: {}, given: {}, floor: 0.0001 } },
};

import { describe, expect, it } from 'vitest';
import { bits, waterfallSteps } from '../src/review/workbench/app/weights.js';

/** The workbench's match-weight waterfall (src/review/workbench/app/weights.ts): pure arithmetic, run in Node. */
const candidate = {
  memberRef: '00000000-0000-4000-8000-000000000001',
  probability: 0.99,
  matchWeight: 20,
  cardHit: false,
  member: null,
  explanation: [
    { field: 'given', level: 'exact', weight: 10 },
    { field: 'family', level: 'exact', weight: 6, discounted: true as const },
    { field: 'birthDate', level: 'different', weight: -4 },
    { field: 'phone', level: 'missing', weight: 0 },
    { field: 'address', level: 'zip', weight: 3 },
  ],
};

describe('match-weight waterfall', () => {
  it('starts at the prior the field weights leave over and steps to the match weight', () => {
    const steps = waterfallSteps(candidate);
    expect(steps.map((s) => [s.label, s.kind, s.from, s.to])).toEqual([
      ['Prior odds', 'prior', 0, 11],
      ['given: exact', 'up', 11, 21],
      ['family: exact (not counted)', 'zero', 21, 21],
      ['birthDate: different', 'down', 21, 17],
      ['address: zip', 'up', 17, 20],
      ['Match weight', 'total', 0, 20],
    ]);
    expect(steps.at(-2)!.to).toBe(candidate.matchWeight);
  });

  it('writes weights with their sign', () => {
    expect([bits(3.14), bits(-2), bits(0)]).toEqual(['+3.1', '−2.0', '±0.0']);
  });
});

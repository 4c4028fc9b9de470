import type { Candidate } from './api.js';

/**
 * The steps of a candidate's match-weight waterfall (Splink's chart): the prior log-odds, then each field's
 * weight in bits added on, ending at the candidate's match weight. The prior is what the match weight holds
 * beyond the field weights, so the steps always add up to the weight the engine computed. A household field
 * whose agreement was not counted (the model counts only the strongest) is a zero step; a missing field none.
 * Plain arithmetic, no DOM: test/workbench-weights.test.ts runs it in Node.
 */
export interface Step {
  label: string;
  from: number;
  to: number;
  kind: 'prior' | 'up' | 'down' | 'zero' | 'total';
}

export const bits = (weight: number) => `${weight > 0 ? '+' : weight < 0 ? '−' : '±'}${Math.abs(weight).toFixed(1)}`;

export function waterfallSteps(candidate: Candidate): Step[] {
  const counted = candidate.explanation.filter((e) => e.level !== 'missing');
  const fieldSum = counted.reduce((sum, e) => sum + (e.discounted ? 0 : e.weight), 0);
  const prior = candidate.matchWeight - fieldSum;
  const steps: Step[] = [{ label: 'Prior odds', from: 0, to: prior, kind: 'prior' }];
  let running = prior;
  for (const e of counted) {
    const weight = e.discounted ? 0 : e.weight;
    steps.push({
      label: `${e.field}: ${e.level}${e.discounted ? ' (not counted)' : ''}`,
      from: running,
      to: running + weight,
      kind: weight > 0 ? 'up' : weight < 0 ? 'down' : 'zero',
    });
    running += weight;
  }
  steps.push({ label: 'Match weight', from: 0, to: candidate.matchWeight, kind: 'total' });
  return steps;
}


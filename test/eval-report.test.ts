import { describe, expect, it } from 'vitest';
import { decide, type Candidate } from '../src/matching/decide.js';
import { normalizePerson } from '../src/matching/normalize.js';
import { summarise, type QueryOutcome } from '../tools/evaluation/evaluate.js';
import { renderReport } from '../tools/evaluation/report.js';
import { handSetModel } from './support/model.js';

const thresholds = { upper: 0.999999, lower: 0.99999, marginBits: 10 };
const member = (memberId: string, given: string, birthDate: string): Candidate => ({
  memberUuid: `uuid-${memberId}`,
  memberId,
  cardHit: false,
  person: normalizePerson({ given, family: 'Zyxwort', birthDate, postalCode: '62701', addressLine: '1 Quince Way' }),
});

describe('eval --report', () => {
  const index = [member('M-ONE', 'Philippa', '1961-02-03'), member('M-TWO', 'Philippa', '1988-07-09')];
  const outcome = (queryId: string, given: string, birthDate: string, memberId: string | null): QueryOutcome => ({
    queryId,
    truth: { queryId, memberId, hazard: '' } as QueryOutcome['truth'],
    decision: decide(handSetModel, thresholds, normalizePerson({ given, family: 'Zyxwort', birthDate, postalCode: '62701', addressLine: '1 Quince Way' }), index),
    blocked: true,
  });
  const outcomes = [outcome('q1', 'Philippa', '1961-02-03', 'M-ONE'), outcome('q2', 'Philippa', '1988-07-09', 'M-TWO'), outcome('q3', 'Pippa', '1990-01-01', null)];
  const html = renderReport({ report: summarise(outcomes, 1), outcomes, model: handSetModel, thresholds, title: 'test report' });

  it('is one self-contained page: Chart.js inlined, nothing fetched from elsewhere', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('Chart.js');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/cdn/i);
    for (const id of ['upper', 'lower', 'histogram', 'waterfalls']) expect(html).toContain(`id="${id}"`);
  });

  it('names queries and comparison levels, never demographics or member identifiers', () => {
    expect(html).toContain('q1: matched');
    expect(html).toContain('given: exact');
    expect(html).not.toMatch(/Philippa|PHILIPPA|Pippa|Zyxwort|ZYXWORT|1961-02-03|Quince|QUINCE|M-ONE|M-TWO|uuid-/);
  });
});

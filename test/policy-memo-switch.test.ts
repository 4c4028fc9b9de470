import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicyEngine } from '../src/policy/cedar-policy.js';

/** POLICY_DECISION_MEMO=false (a diagnostic, docs/runtime.md) runs Cedar on every decision; the default memoises. */
const request = {
  principal: { type: 'Partner' as const, id: 'client-switch', attrs: { organization: 'http://hl7.org/fhir/sid/us-npi|0123456789', scopes: ['system/Patient.$member-match'] } },
  action: 'submit-member-match' as const,
  resource: { type: 'MatchService' as const, id: 'member-match' },
  context: { protocol: 'private_key_jwt' },
};

describe('the Cedar decision memo switch', () => {
  const saved = process.env.POLICY_DECISION_MEMO;
  afterEach(() => {
    if (saved === undefined) delete process.env.POLICY_DECISION_MEMO;
    else process.env.POLICY_DECISION_MEMO = saved;
  });

  it('memoises by default', () => {
    delete process.env.POLICY_DECISION_MEMO;
    const engine = loadPolicyEngine();
    expect(engine.decide(request)).toBe(engine.decide(request));
  });

  it('asks Cedar every time with POLICY_DECISION_MEMO=false, with the same answer', () => {
    process.env.POLICY_DECISION_MEMO = 'false';
    const engine = loadPolicyEngine();
    const first = engine.decide(request);
    const second = engine.decide(request);
    expect(second).not.toBe(first);
    expect(second).toEqual(first);
    expect(first.decision).toBe('allow');
  });
});

import { describe, expect, it } from 'vitest';
import { loadPolicyEngine } from '../src/policy/cedar-policy.js';
import { readPolicyTests, runPolicyTests } from '../src/policy/policy-tests.js';

describe('Cedar policy set', () => {
  const engine = loadPolicyEngine();

  it('decides every case of the policy test table as recorded', () => {
    const results = runPolicyTests(engine, readPolicyTests());
    expect(results.length).toBeGreaterThanOrEqual(5);
    expect(results.filter((r) => !r.passed)).toEqual([]);
  });

  it('has a version that changes with the policies', () => {
    expect(engine.version).toMatch(/^[0-9a-f]{16}$/);
    const schema = 'namespace MemberMatch { entity MatchService; entity Partner = { organization: String, scopes: Set<String> }; entity MemberDirectory = { tenant: String }; type RequestContext = { protocol: String, purposeOfUse?: String }; action "submit-member-match" appliesTo { principal: [Partner], resource: [MatchService], context: RequestContext }; action "read-matched-member" appliesTo { principal: [Partner], resource: [MemberDirectory], context: RequestContext }; }';
    const other = loadPolicyEngine(schema, '@id("all") @reason("ok") permit (principal, action, resource);');
    expect(other.version).not.toBe(engine.version);
  });

  it('refuses to start on a policy that does not validate against the schema, or lacks an @id', () => {
    const schema = 'namespace MemberMatch { entity MatchService; entity Partner = { organization: String, scopes: Set<String> }; action "submit-member-match" appliesTo { principal: [Partner], resource: [MatchService] }; }';
    expect(() => loadPolicyEngine(schema, '@id("x") permit (principal, action, resource) when { principal.nonsense == 1 };')).toThrow(/validate/);
    expect(() => loadPolicyEngine(schema, 'permit (principal, action, resource);')).toThrow(/@id/);
  });

  it('denies by default when no policy permits, naming that as the reason', () => {
    const schema = 'namespace MemberMatch { entity MatchService; entity Partner = { organization: String, scopes: Set<String> }; action "submit-member-match" appliesTo { principal: [Partner], resource: [MatchService], context: { protocol: String } }; }';
    const none = loadPolicyEngine(schema, '@id("never") forbid (principal, action, resource) when { false };');
    const decision = none.decide({
      principal: { type: 'Partner', id: 'c', attrs: { organization: 'o', scopes: [] } },
      action: 'submit-member-match',
      resource: { type: 'MatchService', id: 'member-match' },
      context: { protocol: 'private_key_jwt' },
    });
    expect(decision).toMatchObject({ decision: 'deny', policies: [], reason: 'no-policy-permits' });
  });

  it('remembers a decision per distinct request, and decides afresh when anything in it differs', () => {
    const request = (scopes: string[]) => ({
      principal: { type: 'Partner' as const, id: 'client-memo', attrs: { organization: 'http://hl7.org/fhir/sid/us-npi|0123456789', scopes } },
      action: 'submit-member-match' as const,
      resource: { type: 'MatchService' as const, id: 'member-match' },
      context: { protocol: 'private_key_jwt' },
    });
    const first = engine.decide(request(['system/Patient.$member-match']));
    expect(first.decision).toBe('allow');
    expect(engine.decide(request(['system/Patient.$member-match']))).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.policies)).toBe(true);
    // Same client, scope gone: not the remembered answer.
    expect(engine.decide(request(['system/Patient.rs']))).toMatchObject({ decision: 'deny', reason: 'scope-missing' });
  });
});

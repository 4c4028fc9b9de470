import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { projectFile } from '../project-files.js';
import type { PolicyEngine } from './cedar-policy.js';

/**
 * The policy test table (src/policy/cedar/policy-tests.json): principal / action / resource / context cases
 * with the decision, determining policies and reason each must get. `member-match policy test` and the test
 * suite both run it, so a policy edit that changes a decision fails CI until the table says so too.
 */

const caseSchema = z.object({
  name: z.string(),
  principal: z.union([
    z.object({ type: z.enum(['Partner', 'Workload']), id: z.string(), organization: z.string(), scopes: z.array(z.string()) }),
    z.object({ type: z.literal('Human'), id: z.string(), roles: z.array(z.string()) }),
    z.object({ type: z.literal('Agent'), id: z.string(), organization: z.string(), scopes: z.array(z.string()), delegatorClass: z.string() }),
  ]),
  action: z.enum(['submit-member-match', 'submit-bulk-member-match', 'reconcile-roster', 'read-matched-member', 'administer', 'read-audit', 'work-review-case', 'decide-review-case', 'reopen-review-case', 'read-member-links', 'revoke-member-link']),
  resource: z.object({ type: z.enum(['MatchService', 'RosterService', 'MemberDirectory', 'ConsentRegistry', 'AuditTrail', 'ReviewQueue', 'Operations', 'MemberLinks']), id: z.string(), tenant: z.string().optional() }),
  context: z.object({ protocol: z.string(), purposeOfUse: z.string().optional() }),
  expect: z.object({ decision: z.enum(['allow', 'deny']), policies: z.array(z.string()), reason: z.string().optional() }),
});

export type PolicyTestCase = z.infer<typeof caseSchema>;

export const POLICY_TESTS_FILE = projectFile('src', 'policy', 'cedar', 'policy-tests.json');

export function readPolicyTests(file = POLICY_TESTS_FILE): PolicyTestCase[] {
  return z.array(caseSchema).parse(JSON.parse(readFileSync(file, 'utf8')));
}

export interface PolicyTestResult {
  name: string;
  passed: boolean;
  got: { decision: string; policies: string[]; reason: string };
}

export function runPolicyTests(engine: PolicyEngine, cases: readonly PolicyTestCase[]): PolicyTestResult[] {
  return cases.map((c) => {
    const got = engine.decide({
      principal:
        c.principal.type === 'Human'
          ? { type: 'Human', id: c.principal.id, attrs: { roles: c.principal.roles } }
          : c.principal.type === 'Agent'
            ? { type: 'Agent', id: c.principal.id, attrs: { organization: c.principal.organization, scopes: c.principal.scopes, delegatorClass: c.principal.delegatorClass } }
            : { type: c.principal.type, id: c.principal.id, attrs: { organization: c.principal.organization, scopes: c.principal.scopes } },
      action: c.action,
      resource: { type: c.resource.type, id: c.resource.id, ...(c.resource.tenant ? { attrs: { tenant: c.resource.tenant } } : {}) },
      context: c.context,
    });
    const passed =
      got.decision === c.expect.decision &&
      JSON.stringify([...c.expect.policies].sort()) === JSON.stringify(got.policies) &&
      (c.expect.reason === undefined || c.expect.reason === got.reason);
    return { name: c.name, passed, got: { decision: got.decision, policies: got.policies, reason: got.reason } };
  });
}

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { formatOrganization, type Actor } from '../identity/actor.js';
import { projectFile } from '../project-files.js';

/**
 * Authorization as Cedar policy (src/policy/cedar): one versioned policy set decides every business action,
 * and every decision can be explained afterwards — the policy-set version, the policies that determined it
 * and their reason go into the audit trail with the request.
 */

export type BusinessAction =
  | 'submit-member-match'
  | 'submit-bulk-member-match'
  | 'reconcile-roster'
  | 'read-matched-member'
  | 'administer'
  | 'read-audit'
  | 'work-review-case'
  | 'decide-review-case'
  | 'reopen-review-case'
  | 'read-member-links'
  | 'revoke-member-link';

export interface ResourceRef {
  type: 'MatchService' | 'RosterService' | 'MemberDirectory' | 'ConsentRegistry' | 'AuditTrail' | 'ReviewQueue' | 'Operations' | 'MemberLinks';
  id: string;
  attrs?: Record<string, string>;
}

export interface PolicyDecision {
  decision: 'allow' | 'deny';
  /** Ids (`@id`) of the policies that determined the decision; empty for the default deny. */
  policies: string[];
  /** The determining policies' `@reason`, or `no-policy-permits` for the default deny. */
  reason: string;
  /** sha256 (first 16 hex) of the schema and the policies: which rules decided. */
  version: string;
}

export interface PolicyEngine {
  version: string;
  decide(request: PolicyRequest): PolicyDecision;
}

export interface PolicyRequest {
  principal: { type: 'Partner' | 'Workload' | 'Human' | 'Agent'; id: string; attrs: Record<string, cedar.CedarValueJson> };
  action: BusinessAction;
  resource: ResourceRef;
  context: Record<string, cedar.CedarValueJson>;
}

const NAMESPACE = 'MemberMatch';

export function loadPolicyEngine(
  schemaText = readFileSync(projectFile('src', 'policy', 'cedar', 'schema.cedarschema'), 'utf8'),
  policiesText = readFileSync(projectFile('src', 'policy', 'cedar', 'policies.cedar'), 'utf8'),
): PolicyEngine {
  const parts = cedar.policySetTextToParts(policiesText);
  if (parts.type !== 'success') throw new Error(`policies do not parse: ${parts.errors.map((e) => e.message).join('; ')}`);
  const staticPolicies: Record<string, string> = {};
  const reasons = new Map<string, string>();
  for (const text of parts.policies) {
    const json = cedar.policyToJson(text);
    if (json.type !== 'success') throw new Error('a policy does not convert to JSON');
    const id = json.json.annotations?.id;
    if (!id) throw new Error('every policy needs an @id annotation');
    if (staticPolicies[id]) throw new Error(`duplicate policy @id ${id}`);
    staticPolicies[id] = text;
    reasons.set(id, json.json.annotations?.reason ?? id);
  }
  const validation = cedar.validate({ schema: schemaText, policies: { staticPolicies } });
  if (validation.type !== 'success') throw new Error(`policies do not validate: ${validation.errors.map((e) => e.message).join('; ')}`);
  if (validation.validationErrors.length > 0) {
    throw new Error(`policies do not validate against the schema: ${validation.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`).join('; ')}`);
  }
  const version = createHash('sha256').update(schemaText).update('\n').update(policiesText).digest('hex').slice(0, 16);
  // Parsed once and kept by the engine (keyed by version): handing the texts to every decision made Cedar
  // re-parse schema and policies per request, which cost more than the rest of a $member-match together.
  const preparsedSchema = cedar.preparseSchema(`schema-${version}`, schemaText);
  if (preparsedSchema.type !== 'success') throw new Error('the schema does not parse');
  const preparsedPolicies = cedar.preparsePolicySet(`policies-${version}`, { staticPolicies });
  if (preparsedPolicies.type !== 'success') throw new Error('the policies do not parse');

  // Decisions are memoised per request (principal with its attributes, action, resource, context): the same
  // partner asking the same thing gets the same answer from the same policy version, so the policy engine
  // runs once per distinct request rather than on every HTTP request. Besides the cost, this keeps the
  // Wasm call out of the hot path: under load on Node 20.20 we saw V8 abort ("Fatal error … unreachable
  // code" in Deoptimizer::DoComputeBuiltinContinuation) when a lazy deoptimisation hit the frame calling
  // into Cedar's Wasm module (docs/architecture.md "Known issues"). POLICY_DECISION_MEMO=false turns the memo off: a
  // diagnostic for re-testing that abort on a new runtime (docs/runtime.md), never for production.
  const memoise = decisionMemoEnabled();
  const memo = new Map<string, PolicyDecision>();
  return {
    version,
    decide(request) {
      if (!memoise) return evaluate(request);
      const key = JSON.stringify([request.principal, request.action, request.resource, request.context]);
      const known = memo.get(key);
      if (known) return known;
      const decision = evaluate(request);
      if (memo.size >= DECISION_MEMO_SIZE) memo.delete(memo.keys().next().value!);
      memo.set(key, decision);
      return decision;
    },
  };

  function evaluate(request: PolicyRequest): PolicyDecision {
    const principal = { type: `${NAMESPACE}::${request.principal.type}`, id: request.principal.id };
    const resource = { type: `${NAMESPACE}::${request.resource.type}`, id: request.resource.id };
    const answer = cedar.statefulIsAuthorized({
      principal,
      action: { type: `${NAMESPACE}::Action`, id: request.action },
      resource,
      context: request.context,
      preparsedSchemaName: `schema-${version}`,
      validateRequest: true,
      preparsedPolicySetId: `policies-${version}`,
      entities: [
        { uid: principal, attrs: request.principal.attrs, parents: [] },
        { uid: resource, attrs: request.resource.attrs ?? {}, parents: [] },
      ],
    });
    // A request the schema rejects is a programming error here, not a client's: refuse, and say so.
    if (answer.type !== 'success') return Object.freeze({ decision: 'deny' as const, policies: [], reason: 'policy-request-invalid', version });
    const policies = [...answer.response.diagnostics.reason].sort();
    const reason = policies.length === 0 ? 'no-policy-permits' : [...new Set(policies.map((id) => reasons.get(id)!))].sort().join(',');
    return Object.freeze({ decision: answer.response.decision, policies: Object.freeze(policies) as string[], reason, version });
  }
}

/** Distinct policy requests remembered (oldest forgotten first): a few per registered client and action. */
const DECISION_MEMO_SIZE = 10_000;

/** The decision memo is on unless POLICY_DECISION_MEMO is `false` (or `0`, `no`): a diagnostic switch. */
function decisionMemoEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return !['false', '0', 'no'].includes((env.POLICY_DECISION_MEMO ?? '').trim().toLowerCase());
}

/** The Cedar request for an actor doing a business action. */
export function policyRequest(actor: Actor, action: BusinessAction, resource: ResourceRef): PolicyRequest {
  const common = { organization: formatOrganization(actor.organization), scopes: [...actor.scopes] };
  const principal: PolicyRequest['principal'] =
    actor.actorClass === 'human'
      ? { type: 'Human', id: actor.subject, attrs: { roles: [...(actor.roles ?? [])] } }
      : actor.actorClass === 'agent'
        ? { type: 'Agent', id: actor.clientId, attrs: { ...common, delegatorClass: (actor.delegationChain?.[0] ?? '').split(':')[0] ?? '' } }
        : { type: actor.actorClass === 'workload' ? 'Workload' : 'Partner', id: actor.clientId, attrs: common };
  return {
    principal,
    action,
    resource,
    context: { protocol: actor.protocol, ...(actor.purposeOfUse ? { purposeOfUse: actor.purposeOfUse } : {}) },
  };
}

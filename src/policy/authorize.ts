import type { RequestAudit } from '../audit/request-audit.js';
import { ForbiddenError } from '../errors.js';
import type { Actor } from '../identity/actor.js';
import { policyRequest, type BusinessAction, type PolicyEngine, type ResourceRef } from './cedar-policy.js';

const MESSAGES: Record<string, string> = {
  'scope-missing': 'the access token lacks the scope this action needs',
  'tenant-mismatch': 'the resource belongs to another organisation',
  'actor-class-not-allowed': 'this kind of caller may not perform this action',
  'role-missing': 'your role does not allow this action',
};

/**
 * Authorizes a business action by the policy set and records the decision — allow or deny, its policy-set
 * version, the determining policies and reason — in the request's audit event. A deny is a 403 naming the reason.
 */
export function authorize(engine: PolicyEngine, audit: RequestAudit, actor: Actor, action: BusinessAction, resource: ResourceRef): void {
  const decision = engine.decide(policyRequest(actor, action, resource));
  audit.details.policy = { action, ...decision };
  if (decision.decision === 'deny') {
    throw new ForbiddenError(decision.reason, MESSAGES[decision.reason] ?? 'the policy does not permit this action');
  }
}

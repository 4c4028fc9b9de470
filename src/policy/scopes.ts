import type { Actor } from '../identity/actor.js';
import { ForbiddenError } from '../errors.js';

/** The business actions a partner token can be used for, and the SMART scope each needs. */
export const ACTION_SCOPES = {
  'submit-member-match': 'system/Patient.$member-match',
  'read-matched-member': 'system/Patient.rs',
} as const;

export type PartnerAction = keyof typeof ACTION_SCOPES;

/** Authorization for partner tokens: the token must carry the action's scope. */
export function authorize(actor: Actor, action: PartnerAction): void {
  const scope = ACTION_SCOPES[action];
  if (!actor.scopes.includes(scope)) {
    throw new ForbiddenError('scope-missing', `the access token lacks the scope ${scope}`);
  }
}

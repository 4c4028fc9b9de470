import type { SystemValue } from '../shared/system-value.js';

/** Who is calling: partner payers, our own workloads (batch jobs), review staff, and agents acting for one of them. */
export type ActorClass = 'partner' | 'workload' | 'human' | 'agent';

/** `local`: an operator at the command line, trusted by holding the database credentials (no token). */
export type AuthenticationProtocol = 'private_key_jwt' | 'token-exchange' | 'oidc' | 'local';

/** What every authenticated request carries, and what the audit trail records about the caller. */
export interface Actor {
  actorClass: ActorClass;
  /** The subject: for partners, the registered client id; for workloads, the upstream token's `sub`. */
  subject: string;
  /** The registration the token was issued to: a partner client id, or a workload id. */
  clientId: string;
  /** The partner's organisation; for our own workloads, OWN_ORGANIZATION. */
  organization: SystemValue;
  scopes: readonly string[];
  /** Review staff's roles (reviewer, supervisor, auditor, admin), from their identity provider. */
  roles?: readonly string[];
  purposeOfUse: string | undefined;
  /**
   * For delegated tokens (agents): who delegated, outermost first, as `class:id` — e.g.
   * [`partner:mm-…`, `agent:ag-…`]. The token's `act` claim carries the same chain.
   */
  delegationChain?: readonly string[];
  protocol: AuthenticationProtocol;
  tokenJti: string;
}

export function formatOrganization(org: SystemValue): string {
  return `${org.system}|${org.value}`;
}

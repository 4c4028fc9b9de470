import type { SystemValue } from '../config.js';

/** Who is calling. Partners arrive first; workloads, agents and humans join with the identity issue. */
export type ActorClass = 'partner';

export type AuthenticationProtocol = 'private_key_jwt';

/** What every authenticated request carries, and what the audit trail records about the caller. */
export interface Actor {
  actorClass: ActorClass;
  /** The subject: for partners, the registered client id. */
  subject: string;
  clientId: string;
  organization: SystemValue;
  scopes: readonly string[];
  purposeOfUse: string | undefined;
  protocol: AuthenticationProtocol;
  tokenJti: string;
}

export function formatOrganization(org: SystemValue): string {
  return `${org.system}|${org.value}`;
}

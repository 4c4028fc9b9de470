import type { Actor } from '../identity/actor.js';
import { formatOrganization } from '../identity/actor.js';
import type { SystemValue } from '../shared/system-value.js';

/**
 * On whose authority a match is asked: the unit every guard counts against. A partner acts for itself; an
 * agent acts for the partner at the head of its delegation chain (so a locked-out partner cannot send an agent
 * instead); a workload acts for our own organisation.
 */
export interface Authority {
  /** The guards' key: `partner:<client id>` or `org:<system|value>`. */
  tenant: string;
  /** The organisation asking: review cases are partitioned by it, and its consent names it as recipient. */
  organization: SystemValue;
  /** The partner client whose links a match writes; null for our own workloads (nothing is linked). */
  linkOwnerClientId: string | null;
  /** Who called, as the audit trail records it. */
  actor: Actor;
  /** The actor chain as `class:id`, outermost first: what a security alert names. */
  actorChain: string[];
}

export function authorityOf(actor: Actor): Authority {
  const actorChain = actor.delegationChain?.length ? [...actor.delegationChain] : [`${actor.actorClass}:${actor.clientId}`];
  if (actor.actorClass === 'partner') {
    return { tenant: `partner:${actor.clientId}`, organization: actor.organization, linkOwnerClientId: actor.clientId, actor, actorChain };
  }
  if (actor.actorClass === 'agent') {
    const head = actor.delegationChain?.[0] ?? '';
    // The policy lets agents match only for partners; anything else here is a bug, not a client's mistake.
    if (!head.startsWith('partner:')) throw new Error('an agent matched without a partner at the head of its delegation chain');
    const partner = head.slice('partner:'.length);
    return { tenant: `partner:${partner}`, organization: actor.organization, linkOwnerClientId: partner, actor, actorChain };
  }
  return { tenant: `org:${formatOrganization(actor.organization)}`, organization: actor.organization, linkOwnerClientId: null, actor, actorChain };
}

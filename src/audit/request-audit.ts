import type { DbOrTx } from '../db/database.js';
import type { Actor } from '../identity/actor.js';
import { appendAuditEvent } from './audit-trail.js';

/**
 * What one HTTP request has learnt for its audit event so far. Each layer fills in its part as the request
 * passes (authentication the actor, consent the decision, resolution the member); exactly one event is
 * written per request, either inside the transaction of the request's effect or when it is answered.
 */
export interface RequestAudit {
  requestId: string;
  sourceIp: string | undefined;
  operation: string;
  actor?: Actor;
  consentDecision?: string;
  memberRef?: string;
  details: Record<string, unknown>;
  written: boolean;
}

export async function writeRequestAudit(
  db: DbOrTx,
  audit: RequestAudit,
  result: { outcome: 'success' | 'failure'; httpStatus: number; reasonCode: string },
): Promise<void> {
  if (audit.written) return;
  await appendAuditEvent(db, {
    requestId: audit.requestId,
    sourceIp: audit.sourceIp,
    actor: audit.actor,
    operation: audit.operation,
    outcome: result.outcome,
    httpStatus: result.httpStatus,
    reasonCode: result.reasonCode,
    consentDecision: audit.consentDecision,
    memberRef: audit.memberRef,
    details: audit.details,
  });
  audit.written = true;
}

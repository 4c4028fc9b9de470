import type { DbOrTx } from '../db/database.js';
import type { Actor } from '../identity/actor.js';
import { appendAuditEvent, type AuditEvent } from './audit-trail.js';

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

export interface RequestResult {
  outcome: 'success' | 'failure';
  httpStatus: number;
  reasonCode: string;
}

export async function writeRequestAudit(db: DbOrTx, audit: RequestAudit, result: RequestResult): Promise<void> {
  if (audit.written) return;
  await appendAuditEvent(db, requestAuditEvent(audit, result));
  audit.written = true;
}

/** The request's one audit event, for a caller that appends it with others in its own transaction (then sets `written`). */
export function requestAuditEvent(audit: RequestAudit, result: RequestResult): AuditEvent {
  return {
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
  };
}

import { appendAuditEvents, auditEventInsertFrom, type AuditEvent } from '../audit/audit-trail.js';
import type { Db, Tx } from '../db/database.js';
import { expectedLinkIds, saveLink, saveLinkAtomically } from '../links/member-links.js';
import { reviewCasesOpened } from '../metrics.js';
import { openCase } from '../review/review-cases.js';
import type { Authority } from './authority.js';
import type { MatchPlan, PlannedBatch } from './types.js';

export interface CommitOptions {
  /** The batch job the plans belong to: the review cases it opens name it. */
  batchJobId?: string | undefined;
  /** The HTTP request, for the security alerts' correlation. */
  requestId?: string | undefined;
  /**
   * Each plan's audit event, built after its effects are written (so it can name the link and the case), or
   * undefined for none. The door decides the envelope (request id and HTTP status, or batch job and row).
   */
  auditEvent: (plan: MatchPlan, index: number) => AuditEvent | undefined;
}

/**
 * The match pipeline's writing half: every plan's effect — a link for a match, a review case (and its outbox
 * row) for the uncertain — its audit event, and one `security-alert` event per guard that tripped, all in the
 * caller's transaction, so an effect never exists without the event that records it.
 */
export async function commitPlans(trx: Tx, authority: Authority, batch: PlannedBatch, options: CommitOptions): Promise<void> {
  const events = alertEvents(authority, batch, options);
  for (const [index, plan] of batch.plans.entries()) {
    const { newCase, link } = plan.effects;
    if (newCase) {
      const opened = await openCase(trx, { ...newCase, batchJobId: options.batchJobId });
      if (opened.created) reviewCasesOpened.inc();
      plan.reviewCaseId = opened.id;
      plan.details.reviewCase = opened.id;
    }
    if (link) {
      const stored = await saveLink(trx, link);
      plan.details.linkId = stored.linkId;
      plan.details.consentId = stored.consentId;
    }
    const event = options.auditEvent(plan, index);
    if (event) events.push(event);
  }
  await appendAuditEvents(trx, events);
}

export async function commitPlansAtomically(db: Db, authority: Authority, batch: PlannedBatch, options: CommitOptions): Promise<void> {
  const effectless = batch.plans.every((plan) => !plan.effects.newCase && !plan.effects.link);
  if (effectless) {
    const events = alertEvents(authority, batch, options);
    for (const [index, plan] of batch.plans.entries()) {
      const event = options.auditEvent(plan, index);
      if (event) events.push(event);
    }
    await appendAuditEvents(db, events);
    return;
  }
  const [only] = batch.plans;
  if (batch.plans.length === 1 && batch.alerts.length === 0 && only?.effects.link && !only.effects.newCase) {
    if (await commitLinkInOneStatement(db, only, options)) return;
  }
  await db.transaction().execute((trx) => commitPlans(trx, authority, batch, options));
}

/**
 * A single match's link and its audit event in one statement, no transaction (a matched `$member-match`: two
 * round trips fewer). The event names the link and Consent by the ids they will have; false when a concurrent
 * request made that untrue, and then nothing was written (src/links/member-links.ts saveLinkAtomically).
 */
async function commitLinkInOneStatement(db: Db, plan: MatchPlan, options: CommitOptions): Promise<boolean> {
  const link = plan.effects.link!;
  const expected = expectedLinkIds(link);
  plan.details.linkId = expected.linkId;
  plan.details.consentId = expected.consentId;
  const event = options.auditEvent(plan, 0);
  const written = event !== undefined && (await saveLinkAtomically(db, link, expected, (source, condition) => auditEventInsertFrom(event, source, condition)));
  if (!written) {
    delete plan.details.linkId;
    delete plan.details.consentId;
  }
  return written;
}

function alertEvents(authority: Authority, batch: PlannedBatch, options: CommitOptions): AuditEvent[] {
  return batch.alerts.map((alert) => ({
    requestId: options.requestId,
    actor: authority.actor,
    operation: 'security-alert',
    outcome: 'failure',
    reasonCode: alert.reasonCode,
    details: alert.details,
  }));
}

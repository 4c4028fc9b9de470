import type { Consent, Coverage } from 'fhir/r4.js';
import { requestAuditEvent } from '../../../audit/request-audit.js';
import type { Config } from '../../../config.js';
import { AppError, BusinessRuleError, NotFoundError, ReviewPendingError, TooManyRequestsError } from '../../../errors.js';
import { offeredPerson, parseMemberMatchRequest, type MemberMatchRequest } from '../../../fhir/member-match-request.js';
import { memberMatchResponse } from '../../../fhir/resources.js';
import { authorityOf } from '../../../pipeline/authority.js';
import { commitPlansAtomically } from '../../../pipeline/commit.js';
import { planMatches, type PipelineDeps } from '../../../pipeline/plan.js';
import type { Door, MatchInput, MatchPlan } from '../../../pipeline/types.js';
import { findCase } from '../../../review/review-cases.js';
import { inProgressHeaders, reviewWork } from '../../async-status.js';
import type { OperationContext, OperationResult } from '../operation.js';

/**
 * HRex `Patient/$member-match` and its asynchronous status URL, as adapters over the match pipeline: a request
 * is a batch of one. The plan's effect (link or review case), its audit event and any security alert commit in
 * one transaction; then the plan's domain outcome becomes an HTTP answer here, and only here.
 */

const NO_MATCH_MESSAGE = 'no member matches the submitted demographics and coverage';

export async function memberMatchOperation(
  deps: PipelineDeps,
  context: OperationContext & { respondAsync: boolean },
  body: unknown,
): Promise<OperationResult> {
  const request = parseMemberMatchRequest(body);
  return runPipeline(deps, 'member-match', context, inputOf(request));
}

/**
 * `GET [base]/member-match-status/{case}`: pending → 202; decided → the reviewer's answer, the link written now
 * under the consent the partner sent (judged again, today). Another organisation's case is not found.
 */
export async function memberMatchStatusOperation(deps: PipelineDeps, context: OperationContext, caseId: string): Promise<OperationResult> {
  const review = /^[0-9a-f-]{36}$/i.test(caseId) ? await findCase(deps.db, caseId) : undefined;
  const org = context.actor.organization;
  if (!review || review.partnerOrganization.system !== org.system || review.partnerOrganization.value !== org.value) {
    throw new NotFoundError('not-found', 'no such status for this client');
  }
  context.audit.details.reviewCase = review.id;
  if (reviewWork(review, deps.config.review.retryAfterSeconds).state === 'in-progress') return pendingAnswer(deps.config, review.id);
  const stored = review.linkRequest as { consent?: Consent | null; coverageToLink?: Coverage | null };
  return runPipeline(deps, 'member-match-status', { ...context, respondAsync: true }, {
    offered: review.offered,
    cards: [],
    consent: stored.consent ?? undefined,
    coverageToLink: stored.coverageToLink ?? undefined,
    reviewCase: review,
  });
}

function inputOf(request: MemberMatchRequest): MatchInput {
  return {
    offered: offeredPerson(request),
    cards: request.cardIdentifiers,
    subscriberId: request.subscriberId,
    consent: request.consent,
    coverageToLink: request.coverageToLink,
  };
}

async function runPipeline(
  deps: PipelineDeps,
  door: Door,
  { actor, audit, respondAsync }: OperationContext & { respondAsync: boolean },
  input: MatchInput,
): Promise<OperationResult> {
  const authority = authorityOf(actor);
  const batch = await planMatches(deps, door, authority, [input], { explain: true });
  const plan = batch.plans[0]!;
  const answer = answerFor(deps.config, plan, respondAsync);
  audit.consentDecision = plan.consentDecision ?? audit.consentDecision;
  audit.memberRef = plan.member?.memberUuid;
  await commitPlansAtomically(deps.db, authority, batch, {
    requestId: audit.requestId,
    auditEvent: (committed) => {
      Object.assign(audit.details, committed.details);
      return requestAuditEvent(audit, answer.audit);
    },
  });
  audit.written = true;
  // Built after the commit: a new review case's id is known only now.
  const { result, error } = answer.respond();
  if (error) throw error;
  return result!;
}

type Answer = { result?: OperationResult; error?: AppError };

/** The plan's domain outcome as this door answers it: what the audit event records, and the answer itself. */
function answerFor(
  config: Config,
  plan: MatchPlan,
  respondAsync: boolean,
): { audit: { outcome: 'success' | 'failure'; httpStatus: number; reasonCode: string }; respond: () => Answer } {
  const refuse = (error: () => AppError, status: number, reasonCode: string) => ({
    audit: { outcome: 'failure' as const, httpStatus: status, reasonCode },
    respond: () => ({ error: error() }),
  });
  switch (plan.outcome) {
    case 'matched': {
      const member = plan.member!;
      const body = memberMatchResponse(config.fhirBaseUrl, config.memberIdentifierSystem, member.memberUuid, member.memberId);
      return { audit: { outcome: 'success', httpStatus: 200, reasonCode: 'matched' }, respond: () => ({ result: { status: 200, body, audit: { outcome: 'success', reasonCode: 'matched' } } }) };
    }
    case 'review-pending':
      // FHIR asynchronous pattern: with `Prefer: respond-async` the answer is 202 and a status URL, else 422.
      if (respondAsync) {
        return { audit: { outcome: 'success', httpStatus: 202, reasonCode: 'review-pending' }, respond: () => ({ result: pendingAnswer(config, plan.reviewCaseId!) }) };
      }
      return refuse(() => new ReviewPendingError(plan.reviewCaseId!, config.review.retryAfterSeconds), 422, 'manual-review-required');
    case 'no-match':
    case 'review-budget-exhausted':
      // Past the review budget, the uncertain are answered exactly as a miss; the audit event keeps the truth.
      return refuse(() => new BusinessRuleError('no-match', NO_MATCH_MESSAGE), 422, plan.reasonCode);
    case 'consent-refused':
    case 'opted-out':
      return refuse(() => new BusinessRuleError(plan.reasonCode, plan.message ?? 'the consent cannot be honoured'), 422, plan.reasonCode);
    case 'locked':
      return refuse(() => new TooManyRequestsError('matching-locked', plan.message ?? 'matching is suspended', plan.retryAfterSeconds ?? 60), 429, 'matching-locked');
  }
}

/** With a reviewer: 202, where to ask, and when (the async view every status URL shares). */
function pendingAnswer(config: Config, caseId: string): OperationResult {
  return {
    status: 202,
    headers: { 'Content-Location': `${config.fhirBaseUrl}/member-match-status/${caseId}`, ...inProgressHeaders({ state: 'in-progress', retryAfterSeconds: config.review.retryAfterSeconds }) },
    audit: { outcome: 'success', reasonCode: 'review-pending' },
  };
}

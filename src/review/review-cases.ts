import { sql, type Selectable, type UpdateObject } from 'kysely';
import type { Database, ReviewCasesTable } from '../db/schema.js';
import type { SystemValue } from '../shared/system-value.js';
import { PREPARED_STATEMENT, type DbOrTx } from '../db/database.js';
import type { ScoredCandidate } from '../matching/decision.js';
import type { PersonFields } from '../matching/record.js';

/**
 * Review cases in Postgres: the source of truth for human review. Claims are exclusive through row locks
 * (`FOR UPDATE SKIP LOCKED`) with an expiring lease; decisions use optimistic concurrency (`version`, sent
 * to reviewers as the ETag).
 */

export type CaseStatus = 'pending' | 'claimed' | 'awaiting-confirmation' | 'decided';
export type CaseDecision = 'match' | 'no-match';

export interface ReviewCase {
  id: string;
  status: CaseStatus;
  reason: string;
  /** The partner client that asked; null for a case from one of our own batch jobs (see batchJobId). */
  partnerClientId: string | null;
  /** Who asked: the partner's organisation, or our own for a batch job of ours. */
  partnerOrganization: SystemValue;
  batchJobId: string | null;
  offered: PersonFields;
  /** What completing the link needs: the partner's CoverageToLink and Consent, as sent. */
  linkRequest: Record<string, unknown>;
  candidates: Pick<ScoredCandidate, 'memberUuid' | 'memberId' | 'probability' | 'matchWeight' | 'cardHit' | 'explanation'>[];
  modelVersion: string;
  bestProbability: number | null;
  priority: number;
  slaDueAt: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  decision: CaseDecision | null;
  decidedMemberUuid: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  decidedAt: Date | null;
  version: number;
  /** Needs a second, different reviewer to confirm the decision (four eyes). */
  highRisk: boolean;
  confirmedBy: string | null;
  createdAt: Date;
}

export interface NewCase {
  reason: string;
  partnerClientId: string | null;
  /** The batch job (bulk match or roster reconciliation) the request came in. */
  batchJobId?: string | undefined;
  partnerOrganization: SystemValue;
  requestKey: string;
  offered: PersonFields;
  linkRequest: Record<string, unknown>;
  candidates: ReviewCase['candidates'];
  modelVersion: string;
  bestProbability: number | undefined;
  slaDueAt: Date;
  highRisk: boolean;
}

/**
 * Opens the case for this partner's request, or finds the one it already has (a resubmission). A new case
 * also gets its outbox row, in the caller's transaction. Returns the case and whether it was new.
 */
export async function openCase(trx: DbOrTx, c: NewCase): Promise<{ id: string; created: boolean }> {
  const inserted = await trx
    .insertInto('review_cases')
    .values({
      reason: c.reason,
      partner_client_id: c.partnerClientId,
      batch_job_id: c.batchJobId ?? null,
      partner_org_system: c.partnerOrganization.system,
      partner_org_value: c.partnerOrganization.value,
      request_key: c.requestKey,
      offered: JSON.stringify(c.offered),
      link_request: JSON.stringify(c.linkRequest),
      candidates: JSON.stringify(c.candidates),
      model_version: c.modelVersion,
      best_probability: c.bestProbability ?? null,
      sla_due_at: c.slaDueAt,
      high_risk: c.highRisk,
    })
    .onConflict((oc) => oc.columns(['partner_org_system', 'partner_org_value', 'request_key']).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted) {
    await trx.insertInto('review_outbox').values({ case_id: inserted.id }).execute();
    return { id: inserted.id, created: true };
  }
  const existing = await findCaseByRequest(trx, c.partnerOrganization, c.requestKey);
  if (!existing) throw new Error('review case vanished');
  return { id: existing.id, created: false };
}

export async function findCaseByRequest(db: DbOrTx, organization: SystemValue, requestKey: string): Promise<ReviewCase | undefined> {
  const row = await db
    .selectFrom('review_cases')
    .selectAll()
    .where('partner_org_system', '=', organization.system)
    .where('partner_org_value', '=', organization.value)
    .where('request_key', '=', requestKey)
    .executeTakeFirst();
  return row && toCase(row);
}

/** The cases this organisation's requests already have, by request key (a batch chunk asks for all its rows at once). */
export async function findCasesByRequests(db: DbOrTx, organization: SystemValue, requestKeys: readonly string[]): Promise<Map<string, ReviewCase>> {
  if (requestKeys.length === 0) return new Map();
  // On every partner request: prepared (its columns named, so a migration that adds one cannot break it).
  const rows = await db
    .selectFrom('review_cases')
    .select(CASE_COLUMNS)
    .where('partner_org_system', '=', organization.system)
    .where('partner_org_value', '=', organization.value)
    .where('request_key', '=', sql<string>`any(${[...new Set(requestKeys)]}::text[])`)
    .modifyEnd(sql.raw(PREPARED_STATEMENT))
    .execute();
  return new Map(rows.map((row) => [row.request_key, toCase(row)]));
}

export async function findCase(db: DbOrTx, id: string): Promise<ReviewCase | undefined> {
  const row = await db.selectFrom('review_cases').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toCase(row);
}

/** Every change to a case bumps its version (the reviewers' ETag). */
const NEXT_VERSION = { version: sql<number>`version + 1`, updated_at: sql<Date>`now()` };
/** A case without a decision: proposed, rejected or reopened. */
const NO_DECISION = { decision: null, decided_member_uuid: null, decided_by: null, decision_reason: null, decided_at: null };

type CaseChange = UpdateObject<Database, 'review_cases'>;

/** Applies a change if the case is still at `expectedVersion`; the updated case, or undefined when stale. */
async function updateAtVersion(db: DbOrTx, id: string, expectedVersion: number, change: CaseChange): Promise<ReviewCase | undefined> {
  const result = await db
    .updateTable('review_cases')
    .set({ ...change, ...NEXT_VERSION })
    .where('id', '=', id)
    .where('version', '=', expectedVersion)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 0 ? undefined : findCase(db, id);
}

export interface CaseFilter {
  status?: CaseStatus | undefined;
  reason?: string | undefined;
  partnerClientId?: string | undefined;
  /** Only cases opened at least this many seconds ago. */
  olderThanSeconds?: number | undefined;
  limit: number;
  offset: number;
}

export async function listCases(db: DbOrTx, filter: CaseFilter): Promise<ReviewCase[]> {
  let query = db.selectFrom('review_cases').selectAll();
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.reason) query = query.where('reason', '=', filter.reason);
  if (filter.partnerClientId) query = query.where('partner_client_id', '=', filter.partnerClientId);
  if (filter.olderThanSeconds !== undefined) {
    query = query.where('created_at', '<=', sql<Date>`now() - make_interval(secs => ${filter.olderThanSeconds})`);
  }
  const rows = await query.orderBy('priority', 'desc').orderBy('created_at').limit(filter.limit).offset(filter.offset).execute();
  return rows.map(toCase);
}

/**
 * Claims the most urgent open case for a reviewer: a pending case, or a claimed one whose lease expired.
 * `SKIP LOCKED` makes concurrent claims take different cases.
 */
export async function claimNextCase(db: DbOrTx, reviewer: string, leaseSeconds: number): Promise<ReviewCase | undefined> {
  const row = await sql<{ id: string }>`
    UPDATE review_cases SET status = 'claimed', lease_owner = ${reviewer},
      lease_expires_at = now() + make_interval(secs => ${leaseSeconds}), version = version + 1, updated_at = now()
    WHERE id = (
      SELECT id FROM review_cases
      WHERE status = 'pending' OR (status = 'claimed' AND lease_expires_at < now())
      ORDER BY priority DESC, created_at
      LIMIT 1
      FOR UPDATE SKIP LOCKED)
    RETURNING id`.execute(db);
  const id = row.rows[0]?.id;
  return id ? findCase(db, id) : undefined;
}

/** Extends or gives up a lease; only the holder of a live lease may. Returns the updated case, or undefined. */
export async function changeLease(db: DbOrTx, id: string, reviewer: string, leaseSeconds: number | 'release'): Promise<ReviewCase | undefined> {
  const result = await db
    .updateTable('review_cases')
    .set(
      leaseSeconds === 'release'
        ? { status: 'pending', lease_owner: null, lease_expires_at: null, ...NEXT_VERSION }
        : { lease_expires_at: sql`now() + make_interval(secs => ${leaseSeconds})`, ...NEXT_VERSION },
    )
    .where('id', '=', id)
    .where('status', '=', 'claimed')
    .where('lease_owner', '=', reviewer)
    .where('lease_expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0 ? findCase(db, id) : undefined;
}

export type DecideOutcome = { ok: true; review: ReviewCase } | { ok: false; why: 'not-found' | 'stale' | 'not-claimed-by-you' | 'decided' };

/**
 * Records a reviewer's decision, if the case is at the version the reviewer saw (ETag) and the reviewer holds
 * its lease. A decided case is final here; changing it takes another manual decision (not built yet).
 */
export async function decideCase(
  db: DbOrTx,
  id: string,
  reviewer: string,
  expectedVersion: number,
  decision: { decision: CaseDecision; memberUuid: string | undefined; reason: string },
): Promise<DecideOutcome> {
  const current = await findCase(db, id);
  if (!current) return { ok: false, why: 'not-found' };
  if (current.status === 'decided' || current.status === 'awaiting-confirmation') return { ok: false, why: 'decided' };
  if (current.version !== expectedVersion) return { ok: false, why: 'stale' };
  if (current.status !== 'claimed' || current.leaseOwner !== reviewer || (current.leaseExpiresAt && current.leaseExpiresAt < new Date())) {
    return { ok: false, why: 'not-claimed-by-you' };
  }
  const review = await updateAtVersion(db, id, expectedVersion, {
    status: current.highRisk ? 'awaiting-confirmation' : 'decided',
    decision: decision.decision,
    decided_member_uuid: decision.memberUuid ?? null,
    decided_by: reviewer,
    decision_reason: decision.reason,
    decided_at: new Date(),
    lease_owner: null,
    lease_expires_at: null,
  });
  return review ? { ok: true, review } : { ok: false, why: 'stale' };
}

export type ConfirmOutcome = { ok: true; review: ReviewCase } | { ok: false; why: 'not-found' | 'stale' | 'not-awaiting' | 'same-reviewer' };

/**
 * The second pair of eyes: a different reviewer confirms the proposed decision (the case is decided) or
 * rejects it (the case returns to the queue, the proposal cleared).
 */
export async function confirmCase(db: DbOrTx, id: string, reviewer: string, expectedVersion: number, agree: boolean): Promise<ConfirmOutcome> {
  const current = await findCase(db, id);
  if (!current) return { ok: false, why: 'not-found' };
  if (current.status !== 'awaiting-confirmation') return { ok: false, why: 'not-awaiting' };
  if (current.decidedBy === reviewer) return { ok: false, why: 'same-reviewer' };
  if (current.version !== expectedVersion) return { ok: false, why: 'stale' };
  const review = await updateAtVersion(db, id, expectedVersion, agree ? { status: 'decided', confirmed_by: reviewer } : { status: 'pending', ...NO_DECISION });
  return review ? { ok: true, review } : { ok: false, why: 'stale' };
}

/**
 * Reopens a decided case for another manual decision (supervisors only, at the route): the decision is cleared,
 * the case returns to the queue at raised priority. Automatic runs never do this.
 */
export async function reopenCase(db: DbOrTx, id: string, expectedVersion: number): Promise<ReviewCase | undefined | 'stale'> {
  const current = await findCase(db, id);
  if (!current || current.status !== 'decided') return undefined;
  const review = await updateAtVersion(db, id, expectedVersion, { status: 'pending', ...NO_DECISION, confirmed_by: null, priority: sql<number>`priority + 1` });
  return review ?? 'stale';
}

type CaseRow = Selectable<ReviewCasesTable>;

/** Every column of a case, named (a prepared `SELECT *` would break when a migration adds one). */
const CASE_COLUMNS = [
  'id', 'status', 'reason', 'partner_client_id', 'partner_org_system', 'partner_org_value', 'request_key', 'offered',
  'link_request', 'candidates', 'model_version', 'best_probability', 'priority', 'sla_due_at', 'lease_owner',
  'lease_expires_at', 'decision', 'decided_member_uuid', 'decided_by', 'decision_reason', 'decided_at', 'version',
  'high_risk', 'confirmed_by', 'batch_job_id', 'created_at', 'updated_at',
] as const satisfies readonly (keyof CaseRow)[];

function toCase(row: CaseRow): ReviewCase {
  return {
    id: row.id,
    status: row.status as CaseStatus,
    reason: row.reason,
    partnerClientId: row.partner_client_id,
    batchJobId: row.batch_job_id,
    partnerOrganization: { system: row.partner_org_system, value: row.partner_org_value },
    offered: row.offered as PersonFields,
    linkRequest: row.link_request as Record<string, unknown>,
    candidates: row.candidates as ReviewCase['candidates'],
    modelVersion: row.model_version,
    bestProbability: row.best_probability,
    priority: row.priority,
    slaDueAt: row.sla_due_at,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    decision: row.decision as CaseDecision | null,
    decidedMemberUuid: row.decided_member_uuid,
    decidedBy: row.decided_by,
    decisionReason: row.decision_reason,
    decidedAt: row.decided_at,
    version: row.version,
    highRisk: row.high_risk,
    confirmedBy: row.confirmed_by,
    createdAt: row.created_at,
  };
}

export interface ReviewStats {
  byStatus: Record<string, number>;
  openByReason: Record<string, number>;
  overdue: number;
  oldestOpenAgeSeconds: number | null;
}

/** Counts for `GET /review/stats`: cases by state, open cases by reason, overdue ones, the oldest open case's age. */
export async function reviewStats(db: DbOrTx): Promise<ReviewStats> {
  const byStatus = await db.selectFrom('review_cases').select(['status', db.fn.countAll<string>().as('n')]).groupBy('status').execute();
  const byReason = await db
    .selectFrom('review_cases')
    .select(['reason', db.fn.countAll<string>().as('n')])
    .where('status', '!=', 'decided')
    .groupBy('reason')
    .execute();
  const open = await sql<{ overdue: string; oldest: number | null }>`
    SELECT count(*) FILTER (WHERE sla_due_at < now()) AS overdue,
           extract(epoch FROM now() - min(created_at))::float8 AS oldest
    FROM review_cases WHERE status <> 'decided'`.execute(db);
  return {
    byStatus: Object.fromEntries(byStatus.map((r) => [r.status, Number(r.n)])),
    openByReason: Object.fromEntries(byReason.map((r) => [r.reason, Number(r.n)])),
    overdue: Number(open.rows[0]?.overdue ?? 0),
    oldestOpenAgeSeconds: open.rows[0]?.oldest === null || open.rows[0]?.oldest === undefined ? null : Math.round(open.rows[0].oldest),
  };
}

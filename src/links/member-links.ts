import { randomUUID } from 'node:crypto';
import type { Consent, Coverage } from 'fhir/r4.js';
import { sql, type RawBuilder } from 'kysely';
import type { SystemValue } from '../shared/system-value.js';
import { PREPARED_STATEMENT, type DbOrTx, type Tx } from '../db/database.js';
import { consentResourceHash, type ConsentPermit } from '../consent/hrex-consent.js';
import type { OptOutStatus } from '../consent/opt-out-registry.js';

/**
 * Links record "partner P's coverage C is our member M, under consent K". Later Patient reads and searches
 * by that partner are allowed only through a live link: not revoked, its consent period covering today, and the
 * member not opted out. Staff list links and a supervisor revokes one (link management, like HAPI MDM's link
 * operations); a revoked link keeps its row, with who revoked it and why.
 */

export interface NewLink {
  memberUuid: string;
  clientId: string;
  partnerOrganization: SystemValue;
  consent: Consent;
  permit: ConsentPermit;
  coverageToLink: Coverage | undefined;
  /** The stored link for this coverage and the identical stored Consent, as planning read them. */
  existing?: ExistingLink | undefined;
}

export interface StoredLink {
  linkId: string;
  consentId: string;
}


/** What stands between a matched member and a link to this partner, and what a link written now would reuse. */
export interface DisclosureStanding {
  /** The member's own opt-out in our registry, which overrides every consent. */
  optOut: OptOutStatus | undefined;
  /**
   * A supervisor revoked this partner's link to the member under this very Consent: re-sending the same request
   * must not disclose the member again; only a new Consent (the member agreed again) relinks, as `saveLink` does.
   */
  revokedUnderSameConsent: boolean;
  /** The partner's link for this coverage and the identical Consent, where stored: a link written now keeps their ids. */
  existing: ExistingLink;
}

export interface ExistingLink {
  linkId: string | undefined;
  consentId: string | undefined;
}

/**
 * The standing of each match for a partner organisation, in one statement for a whole batch (every matched
 * request reads it): the registry's opt-out, a revocation under the same Consent, and the ids of the link and
 * Consent that a link written now would update.
 */
export async function disclosureStanding(
  db: DbOrTx,
  organization: SystemValue,
  matches: readonly { memberUuid: string; consent: Consent; coverageToLink: Coverage | undefined }[],
): Promise<DisclosureStanding[]> {
  if (matches.length === 0) return [];
  const { rows } = await sql<{ i: number; opt_out: OptOutStatus | null; revoked: boolean; link_id: string | null; consent_id: string | null }>`
    SELECT m.i::int AS i, o.status AS opt_out, l.id AS link_id, c.id AS consent_id,
      EXISTS (SELECT 1 FROM member_links r
              WHERE r.partner_org_system = ${organization.system} AND r.partner_org_value = ${organization.value}
                AND r.member_uuid = m.member_uuid AND r.consent_id = c.id AND r.revoked_at IS NOT NULL) AS revoked
    FROM unnest(${matches.map((m) => m.memberUuid)}::uuid[], ${matches.map((m) => consentResourceHash(m.consent))}::text[],
                ${matches.map((m) => coverageKey(m.coverageToLink))}::text[]) WITH ORDINALITY AS m(member_uuid, resource_hash, coverage_key, i)
    LEFT JOIN sharing_opt_outs o ON o.member_uuid = m.member_uuid
    -- A stored Consent is the member's, for this recipient, with the same content (saveLink stores it so).
    LEFT JOIN consents c ON c.member_uuid = m.member_uuid AND c.recipient_system = ${organization.system}
      AND c.recipient_value = ${organization.value} AND c.resource_hash = m.resource_hash
    LEFT JOIN member_links l ON l.partner_org_system = ${organization.system} AND l.partner_org_value = ${organization.value}
      AND l.member_uuid = m.member_uuid AND l.link_coverage_key = m.coverage_key
    ${sql.raw(PREPARED_STATEMENT)}`.execute(db);
  const standing = new Array<DisclosureStanding>(matches.length);
  for (const row of rows) {
    standing[row.i - 1] = {
      optOut: row.opt_out ?? undefined,
      revokedUnderSameConsent: row.revoked,
      existing: { linkId: row.link_id ?? undefined, consentId: row.consent_id ?? undefined },
    };
  }
  return standing;
}

export async function saveLink(trx: Tx, link: NewLink): Promise<StoredLink> {
  // The consent (inserted, or the identical one already stored) and the link in one statement, one round trip.
  const together = await sql<{ id: string; consent_id: string }>`
    WITH ${consentCtes(link)} ${linkUpsert(link)} ${sql.raw(PREPARED_STATEMENT)}`.execute(trx);
  if (together.rows[0]) return stored(together.rows[0]);
  // A concurrent request stored the same consent after this statement's snapshot was taken: the insert did
  // nothing and the select could not see that row yet. A second statement (a fresh snapshot) finds it.
  const { rows } = await storedConsent(link, consentResourceHash(link.consent)).execute(trx);
  const consentId = (rows[0] as { id: string } | undefined)?.id;
  if (!consentId) throw new Error('the consent just stored is not visible');
  const linked = await sql<{ id: string; consent_id: string }>`
    WITH consent AS (SELECT ${consentId}::uuid AS id) ${linkUpsert(link)} ${sql.raw(PREPARED_STATEMENT)}`.execute(trx);
  if (!linked.rows[0]) throw new Error('the link was not stored');
  return stored(linked.rows[0]);
}

/** The ids a link written now will have: those of the link and Consent read while planning, or new ones. */
export function expectedLinkIds(link: NewLink): StoredLink {
  return { linkId: link.existing?.linkId ?? randomUUID(), consentId: link.existing?.consentId ?? randomUUID() };
}

/**
 * Writes the link and, in the same statement, what records it, so that no transaction (BEGIN, COMMIT: two round
 * trips of a matched request's six) is needed: one statement is atomic. `recordedBy` gets the name of the CTE
 * holding the written link's row (`id`, `consent_id`) and the condition that it has the expected ids, and returns
 * the statement's final INSERT; where the condition fails, `member_match_expect` aborts the whole statement
 * (migration 0018). Answers false, having written nothing, when the link or its Consent did not turn out to have
 * the expected ids (a concurrent request wrote one after planning read them): the caller then uses saveLink in a
 * transaction.
 */
export async function saveLinkAtomically(
  db: DbOrTx,
  link: NewLink,
  expected: StoredLink,
  recordedBy: (source: string, condition: RawBuilder<boolean>) => RawBuilder<unknown>,
): Promise<boolean> {
  const condition = sql<boolean>`member_match_expect(link.id = ${expected.linkId}::uuid AND link.consent_id = ${expected.consentId}::uuid)`;
  try {
    const result = await sql`
      WITH ${consentCtes(link, expected.consentId)}, link AS (${linkUpsert(link, expected.linkId)})
      ${recordedBy('link', condition)} ${sql.raw(PREPARED_STATEMENT)}`.execute(db);
    // No row: the consent was stored concurrently, after this statement's snapshot; nothing was written.
    return Number(result.numAffectedRows ?? 0) > 0;
  } catch (error) {
    if ((error as { code?: string }).code === 'MM409') return false;
    throw error;
  }
}

function stored(row: { id: string; consent_id: string }): StoredLink {
  return { linkId: row.id, consentId: row.consent_id };
}

/** The identical Consent already stored for this member and recipient, if any. */
function storedConsent(link: NewLink, resourceHash: string): RawBuilder<unknown> {
  return sql`
    SELECT id FROM consents
    WHERE member_uuid = ${link.memberUuid}::uuid AND recipient_system = ${link.partnerOrganization.system}
      AND recipient_value = ${link.partnerOrganization.value} AND resource_hash = ${resourceHash}`;
}

/** CTEs `inserted` and `consent(id)`: the link's Consent, inserted (with `id` when given) or the identical one stored. */
function consentCtes(link: NewLink, id?: string): RawBuilder<unknown> {
  const resourceHash = consentResourceHash(link.consent);
  return sql`
      inserted AS (
        INSERT INTO consents (${id ? sql`id, ` : sql``}member_uuid, partner_client_id, recipient_system, recipient_value, policy_uri,
          period_start, period_end, source_reference, resource, resource_hash)
        VALUES (${id ? sql`${id}::uuid, ` : sql``}${link.memberUuid}::uuid, ${link.clientId}, ${link.partnerOrganization.system},
          ${link.partnerOrganization.value}, ${link.permit.policyUri}, ${link.permit.periodStart}::timestamptz,
          ${link.permit.periodEnd}::timestamptz, ${link.permit.sourceReference ?? null}, ${JSON.stringify(link.consent)}::jsonb, ${resourceHash})
        ON CONFLICT (member_uuid, recipient_system, recipient_value, resource_hash) DO NOTHING
        RETURNING id
      ),
      consent AS ((SELECT id FROM inserted) UNION ALL (${storedConsent(link, resourceHash)}) LIMIT 1)`;
}

/** Upserts the partner's link to the member (with `id` when new and given) under the Consent that the CTE `consent(id)` names. */
function linkUpsert(link: NewLink, id?: string): RawBuilder<unknown> {
  return sql`
    INSERT INTO member_links (${id ? sql`id, ` : sql``}member_uuid, partner_client_id, partner_org_system, partner_org_value, link_coverage_key,
      coverage_to_link, consent_id)
    SELECT ${id ? sql`${id}::uuid, ` : sql``}${link.memberUuid}::uuid, ${link.clientId}, ${link.partnerOrganization.system}, ${link.partnerOrganization.value},
      ${coverageKey(link.coverageToLink)}, ${link.coverageToLink ? JSON.stringify(link.coverageToLink) : null}::jsonb, consent.id
    FROM consent
    ON CONFLICT (partner_org_system, partner_org_value, member_uuid, link_coverage_key) DO UPDATE SET
      consent_id = excluded.consent_id,
      coverage_to_link = excluded.coverage_to_link,
      partner_client_id = excluded.partner_client_id,
      updated_at = now(),
      -- A revocation holds against the consent it was made under: the same request sent again stays revoked;
      -- a new consent (the member agreed again) is a new disclosure and relinks.
      revoked_at = CASE WHEN member_links.consent_id = excluded.consent_id THEN member_links.revoked_at END,
      revoked_by = CASE WHEN member_links.consent_id = excluded.consent_id THEN member_links.revoked_by END,
      revoke_reason = CASE WHEN member_links.consent_id = excluded.consent_id THEN member_links.revoke_reason END
    RETURNING id, consent_id`;
}

/** The partner's own coverage identifier, so re-sending the same request updates rather than duplicates. */
function coverageKey(coverage: Coverage | undefined): string {
  const identifier = coverage?.identifier?.[0];
  if (identifier?.value) return `${identifier.system ?? ''}|${identifier.value}`;
  if (coverage?.subscriberId) return `subscriber|${coverage.subscriberId}`;
  return 'none';
}

/** Members (internal refs) that this partner organisation may see today, restricted to `memberUuids`. */
export async function liveLinkedMembers(
  db: DbOrTx,
  partnerOrganization: SystemValue,
  memberUuids: string[],
  now: Date,
): Promise<Set<string>> {
  if (memberUuids.length === 0) return new Set();
  const rows = await db
    .selectFrom('member_links as l')
    .innerJoin('consents as c', 'c.id', 'l.consent_id')
    .select('l.member_uuid')
    .distinct()
    .where('l.partner_org_system', '=', partnerOrganization.system)
    .where('l.partner_org_value', '=', partnerOrganization.value)
    .where('l.member_uuid', 'in', memberUuids)
    .where('l.revoked_at', 'is', null)
    .where('c.period_start', '<=', now)
    .where('c.period_end', '>=', now)
    // The member's own opt-out (consent registry) overrides every link and consent.
    .where((eb) => eb.not(eb.exists(eb.selectFrom('sharing_opt_outs as o').select('o.member_uuid').whereRef('o.member_uuid', '=', 'l.member_uuid'))))
    .execute();
  return new Set(rows.map((r) => r.member_uuid));
}

/** Why a link does or does not give its partner access today. */
export type LinkStatus = 'active' | 'revoked' | 'member-opted-out' | 'consent-expired' | 'consent-not-yet-valid';

/** A link as staff see it: references, the partner, the consent it stands on, and its status. No demographics. */
export interface LinkView {
  linkId: string;
  memberRef: string;
  memberId: string;
  partnerClientId: string;
  partnerOrganization: string;
  status: LinkStatus;
  createdAt: Date;
  updatedAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
  revokeReason: string | null;
  consent: { id: string; policyUri: string; periodStart: Date; periodEnd: Date; sourceReference: string | null };
}

export interface LinkFilter {
  /** The partner organisation (system|value). */
  partner?: SystemValue;
  partnerClientId?: string;
  /** Our member id. */
  memberId?: string;
  /** Only links with this status (computed as of `now`). */
  status?: LinkStatus;
  limit: number;
  offset: number;
}

function linkQuery(db: DbOrTx) {
  return db
    .selectFrom('member_links as l')
    .innerJoin('consents as c', 'c.id', 'l.consent_id')
    .innerJoin('members as m', 'm.id', 'l.member_uuid')
    .leftJoin('sharing_opt_outs as o', 'o.member_uuid', 'l.member_uuid')
    .select([
      'l.id as link_id',
      'l.member_uuid',
      'm.member_id',
      'l.partner_client_id',
      'l.partner_org_system',
      'l.partner_org_value',
      'l.created_at',
      'l.updated_at',
      'l.revoked_at',
      'l.revoked_by',
      'l.revoke_reason',
      'c.id as consent_id',
      'c.policy_uri',
      'c.period_start',
      'c.period_end',
      'c.source_reference',
      'o.status as opt_out',
    ]);
}

type LinkRow = Awaited<ReturnType<ReturnType<typeof linkQuery>['executeTakeFirstOrThrow']>>;

function linkView(row: LinkRow, now: Date): LinkView {
  const periodStart = new Date(row.period_start);
  const periodEnd = new Date(row.period_end);
  const status: LinkStatus = row.revoked_at
    ? 'revoked'
    : row.opt_out
      ? 'member-opted-out'
      : periodEnd < now
        ? 'consent-expired'
        : periodStart > now
          ? 'consent-not-yet-valid'
          : 'active';
  return {
    linkId: row.link_id,
    memberRef: row.member_uuid,
    memberId: row.member_id,
    partnerClientId: row.partner_client_id,
    partnerOrganization: `${row.partner_org_system}|${row.partner_org_value}`,
    status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    revokeReason: row.revoke_reason,
    consent: { id: row.consent_id, policyUri: row.policy_uri, periodStart, periodEnd, sourceReference: row.source_reference },
  };
}

/** Links (newest first) matching the filter, each with its consent and its status as of `now`. */
export async function listLinks(db: DbOrTx, filter: LinkFilter, now = new Date()): Promise<LinkView[]> {
  let query = linkQuery(db);
  if (filter.partner) query = query.where('l.partner_org_system', '=', filter.partner.system).where('l.partner_org_value', '=', filter.partner.value);
  if (filter.partnerClientId) query = query.where('l.partner_client_id', '=', filter.partnerClientId);
  if (filter.memberId) query = query.where('m.member_id', '=', filter.memberId);
  switch (filter.status) {
    case 'revoked':
      query = query.where('l.revoked_at', 'is not', null);
      break;
    case 'member-opted-out':
      query = query.where('l.revoked_at', 'is', null).where('o.status', 'is not', null);
      break;
    case 'active':
      query = query.where('l.revoked_at', 'is', null).where('o.status', 'is', null).where('c.period_start', '<=', now).where('c.period_end', '>=', now);
      break;
    case 'consent-expired':
      query = query.where('l.revoked_at', 'is', null).where('o.status', 'is', null).where('c.period_end', '<', now);
      break;
    case 'consent-not-yet-valid':
      query = query.where('l.revoked_at', 'is', null).where('o.status', 'is', null).where('c.period_start', '>', now);
      break;
  }
  const rows = await query.orderBy('l.created_at', 'desc').orderBy('l.id').limit(filter.limit).offset(filter.offset).execute();
  return rows.map((row) => linkView(row, now));
}

export async function findLink(db: DbOrTx, linkId: string, now = new Date()): Promise<LinkView | undefined> {
  const row = await linkQuery(db).where('l.id', '=', linkId).executeTakeFirst();
  return row && linkView(row, now);
}

export type RevokeOutcome = { ok: true; link: LinkView } | { ok: false; why: 'not-found' | 'already-revoked' };

/**
 * Revokes a link in the caller's transaction (which writes the audit event with it): from the commit on, the
 * partner's Patient reads and searches no longer find the member through it.
 */
export async function revokeLink(trx: Tx, linkId: string, revokedBy: string, reason: string, now = new Date()): Promise<RevokeOutcome> {
  const updated = await trx
    .updateTable('member_links')
    .set({ revoked_at: now, revoked_by: revokedBy, revoke_reason: reason, updated_at: now })
    .where('id', '=', linkId)
    .where('revoked_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  const link = await findLink(trx, linkId, now);
  if (!link) return { ok: false, why: 'not-found' };
  if (!updated) return { ok: false, why: 'already-revoked' };
  return { ok: true, link };
}

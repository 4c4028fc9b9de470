import { createHash } from 'node:crypto';
import type { Consent, Coverage } from 'fhir/r4.js';
import { sql } from 'kysely';
import type { SystemValue } from '../shared/system-value.js';
import type { DbOrTx, Tx } from '../db/database.js';
import type { ConsentPermit } from '../consent/hrex-consent.js';
import { canonicalJson } from '../shared/canonical-json.js';

/**
 * Links record "partner P's coverage C is our member M, under consent K". Later Patient reads and searches
 * by that partner are allowed only through a live link whose consent period covers today.
 */

export interface NewLink {
  memberUuid: string;
  clientId: string;
  partnerOrganization: SystemValue;
  consent: Consent;
  permit: ConsentPermit;
  coverageToLink: Coverage | undefined;
}

export interface StoredLink {
  linkId: string;
  consentId: string;
}

export async function saveLink(trx: Tx, link: NewLink): Promise<StoredLink> {
  const resourceHash = createHash('sha256').update(canonicalJson(link.consent)).digest('hex');
  // Insert the consent, or find the identical one already stored, in one round trip. When a concurrent
  // request stored the same consent after this statement's snapshot was taken, the insert does nothing and
  // the select cannot see that row yet: a second statement (a fresh snapshot) finds it.
  const findStored = () =>
    trx
      .selectFrom('consents')
      .select('id')
      .where('member_uuid', '=', link.memberUuid)
      .where('recipient_system', '=', link.partnerOrganization.system)
      .where('recipient_value', '=', link.partnerOrganization.value)
      .where('resource_hash', '=', resourceHash);
  const consent =
    (await trx
    .with('inserted', (db) =>
      db
        .insertInto('consents')
        .values({
          member_uuid: link.memberUuid,
          partner_client_id: link.clientId,
          recipient_system: link.partnerOrganization.system,
          recipient_value: link.partnerOrganization.value,
          policy_uri: link.permit.policyUri,
          period_start: link.permit.periodStart,
          period_end: link.permit.periodEnd,
          source_reference: link.permit.sourceReference ?? null,
          resource: JSON.stringify(link.consent),
          resource_hash: resourceHash,
        })
        .onConflict((oc) => oc.columns(['member_uuid', 'recipient_system', 'recipient_value', 'resource_hash']).doNothing())
        .returning('id'),
    )
    .selectFrom('inserted')
    .select('id')
    .unionAll(findStored())
    .limit(1)
    .executeTakeFirst()) ?? (await findStored().executeTakeFirstOrThrow());

  const stored = await trx
    .insertInto('member_links')
    .values({
      member_uuid: link.memberUuid,
      partner_client_id: link.clientId,
      partner_org_system: link.partnerOrganization.system,
      partner_org_value: link.partnerOrganization.value,
      link_coverage_key: coverageKey(link.coverageToLink),
      coverage_to_link: link.coverageToLink ? JSON.stringify(link.coverageToLink) : null,
      consent_id: consent.id,
    })
    .onConflict((oc) =>
      oc.columns(['partner_org_system', 'partner_org_value', 'member_uuid', 'link_coverage_key']).doUpdateSet((eb) => ({
        consent_id: eb.ref('excluded.consent_id'),
        coverage_to_link: eb.ref('excluded.coverage_to_link'),
        partner_client_id: eb.ref('excluded.partner_client_id'),
        updated_at: sql`now()`,
      })),
    )
    .returning('id')
    .executeTakeFirstOrThrow();
  return { linkId: stored.id, consentId: consent.id };
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
    .where('c.period_start', '<=', now)
    .where('c.period_end', '>=', now)
    // The member's own opt-out (consent registry) overrides every link and consent.
    .where((eb) => eb.not(eb.exists(eb.selectFrom('sharing_opt_outs as o').select('o.member_uuid').whereRef('o.member_uuid', '=', 'l.member_uuid'))))
    .execute();
  return new Set(rows.map((r) => r.member_uuid));
}

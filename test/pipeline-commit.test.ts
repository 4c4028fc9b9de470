import type { Consent } from 'fhir/r4.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair } from '../src/cli/partner-tools.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { disclosureStanding } from '../src/links/member-links.js';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import type { Db } from '../src/db/database.js';
import { authorityOf } from '../src/pipeline/authority.js';
import { commitPlansAtomically } from '../src/pipeline/commit.js';
import type { MatchPlan, PlannedBatch } from '../src/pipeline/types.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

const authority = authorityOf({
  actorClass: 'workload',
  subject: 'nightly-reconcile',
  clientId: 'nightly-reconcile',
  organization: { system: 'urn:test:org', value: 'us' },
  scopes: [],
  purposeOfUse: undefined,
  protocol: 'token-exchange',
  tokenJti: 'jti-1',
});
const noMatch: MatchPlan = { outcome: 'no-match', reasonCode: 'no-match', details: {}, effects: {} };
const options = { requestId: 'req-1', auditEvent: (plan: MatchPlan) => ({ operation: 'member-match', outcome: 'failure' as const, reasonCode: plan.reasonCode }) };

/** The database, with `transaction()` replaced: it records that it was asked for and refuses. */
function withoutTransactions(db: Db): { db: Db; asked: () => number } {
  let asked = 0;
  const proxy = new Proxy(db, {
    get(target, key, receiver) {
      if (key === 'transaction') {
        return () => {
          asked++;
          throw new Error('transaction refused by the test');
        };
      }
      // Kysely keeps its state in private fields: its methods must run on the real object.
      const value = Reflect.get(target, key, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: proxy, asked: () => asked };
}

describe('commitPlansAtomically', () => {
  it('writes the events of plans without effects (a no-match and its security alert) with one statement, no transaction', async () => {
    const { db, asked } = withoutTransactions(database.db);
    const batch: PlannedBatch = { plans: [noMatch], alerts: [{ reasonCode: 'brute-force:unmatched', details: { lockoutSeconds: 900 } }] };
    await commitPlansAtomically(db, authority, batch, options);
    expect(asked()).toBe(0);
    const events = await database.db.selectFrom('audit_events').select(['operation', 'reason_code', 'request_id']).orderBy('seq').execute();
    expect(events).toEqual([
      { operation: 'security-alert', reason_code: 'brute-force:unmatched', request_id: 'req-1' },
      { operation: 'member-match', reason_code: 'no-match', request_id: null },
    ]);
    expect(await verifyAuditChain(database.db)).toMatchObject({ ok: true, events: 2 });
  });

  it('opens a transaction as soon as one plan has an effect to write beside its event', async () => {
    const { db, asked } = withoutTransactions(database.db);
    const withCase: MatchPlan = { ...noMatch, outcome: 'review-pending', reasonCode: 'review-pending', effects: { newCase: {} as never } };
    await expect(commitPlansAtomically(db, authority, { plans: [noMatch, withCase], alerts: [] }, options)).rejects.toThrow(/refused by the test/);
    expect(asked()).toBe(1);
  });
});

describe('a single match: its link and audit event in one statement', () => {
  const partnerOrganization = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };
  const consent = hrexExampleRequest({ recipient: partnerOrganization, policy: 'sensitive' }).parameter!.find((p) => p.name === 'Consent')!.resource as Consent;
  const permit = { decision: 'permit' as const, policyUri: 'http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#sensitive', periodStart: new Date('2026-01-01'), periodEnd: new Date('2027-12-31'), sourceReference: undefined };
  const linkEvent = { requestId: 'req-link', auditEvent: (plan: MatchPlan) => ({ requestId: 'req-link', operation: 'member-match', outcome: 'success' as const, reasonCode: plan.reasonCode, details: { ...plan.details } }) };
  let memberUuid: string;
  let clientId: string;

  beforeAll(async () => {
    const { rows } = await sql<{ id: string }>`
      INSERT INTO members (member_id, given, family, birth_date, family_key, given_key, content_hash)
      VALUES ('M-LINK-1', 'Ada', 'Lovelace', '1980-12-10', 'LOVELACE', 'ADA', 'x') RETURNING id`.execute(database.db);
    memberUuid = rows[0]!.id;
    const keys = await generatePartnerKeyPair();
    clientId = (await registerPartnerClient(database.db, { name: 'link-test', organization: partnerOrganization, jwks: keys.publicJwks, scopes: [] })).clientId;
  });

  /** The plan planning makes for a match, with what it read of the stored link and Consent. */
  async function matchedPlan(): Promise<MatchPlan> {
    const [standing] = await disclosureStanding(database.db, partnerOrganization, [{ memberUuid, consent, coverageToLink: undefined }]);
    return {
      outcome: 'matched',
      reasonCode: 'matched',
      member: { memberUuid, memberId: 'M-LINK-1' },
      details: {},
      effects: { link: { memberUuid, clientId, partnerOrganization, consent, permit, coverageToLink: undefined, existing: standing!.existing } },
    };
  }
  const linkEvents = () =>
    database.db.selectFrom('audit_events').select('details').where('request_id', '=', 'req-link').orderBy('seq').execute();
  const stored = async () => {
    const links = await database.db.selectFrom('member_links').select(['id', 'consent_id']).where('member_uuid', '=', memberUuid).execute();
    const consents = await database.db.selectFrom('consents').select('id').where('member_uuid', '=', memberUuid).execute();
    return { links, consents };
  };

  it('writes a new link, its Consent and the event naming both, without a transaction', async () => {
    const { db, asked } = withoutTransactions(database.db);
    await commitPlansAtomically(db, authority, { plans: [await matchedPlan()], alerts: [] }, linkEvent);
    expect(asked()).toBe(0);
    const { links, consents } = await stored();
    expect(links).toHaveLength(1);
    expect(consents).toEqual([{ id: links[0]!.consent_id }]);
    expect((await linkEvents()).map((e) => e.details)).toEqual([expect.objectContaining({ linkId: links[0]!.id, consentId: links[0]!.consent_id })]);
  });

  it('the same request again updates the link planning read, keeping its ids, still without a transaction', async () => {
    const before = await stored();
    const plan = await matchedPlan();
    expect(plan.effects.link!.existing).toEqual({ linkId: before.links[0]!.id, consentId: before.links[0]!.consent_id });
    const { db, asked } = withoutTransactions(database.db);
    await commitPlansAtomically(db, authority, { plans: [plan], alerts: [] }, linkEvent);
    expect(asked()).toBe(0);
    expect(await stored()).toEqual(before);
    expect((await linkEvents()).at(-1)!.details).toMatchObject({ linkId: before.links[0]!.id, consentId: before.links[0]!.consent_id });
  });

  it('when the link was written after planning read it, the statement writes nothing and a transaction writes both, the event naming the stored ids', async () => {
    const before = await stored();
    const eventsBefore = (await linkEvents()).length;
    const stale = await matchedPlan();
    stale.effects.link!.existing = { linkId: undefined, consentId: undefined }; // as if read before the link existed
    let transactions = 0;
    const counting = new Proxy(database.db, {
      get(target, key, receiver) {
        if (key === 'transaction') transactions++;
        const value = Reflect.get(target, key, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    await commitPlansAtomically(counting, authority, { plans: [stale], alerts: [] }, linkEvent);
    expect(transactions).toBe(1);
    expect(await stored()).toEqual(before); // no second link, no second Consent: the aborted statement left nothing
    const events = await linkEvents();
    expect(events).toHaveLength(eventsBefore + 1);
    expect(events.at(-1)!.details).toMatchObject({ linkId: before.links[0]!.id, consentId: before.links[0]!.consent_id });
    expect(await verifyAuditChain(database.db)).toMatchObject({ ok: true });
  });

  it('reads the registry opt-out and a revocation under the same Consent in the same statement', async () => {
    await sql`UPDATE member_links SET revoked_at = now(), revoked_by = 'sup', revoke_reason = 'test' WHERE member_uuid = ${memberUuid}::uuid`.execute(database.db);
    await sql`INSERT INTO sharing_opt_outs (member_uuid, status, source) VALUES (${memberUuid}::uuid, 'opted-out', 'test')`.execute(database.db);
    const otherConsent = { ...consent, id: 'another-consent' };
    const [same, other] = await disclosureStanding(database.db, partnerOrganization, [
      { memberUuid, consent, coverageToLink: undefined },
      { memberUuid, consent: otherConsent, coverageToLink: undefined },
    ]);
    expect(same).toMatchObject({ optOut: 'opted-out', revokedUnderSameConsent: true });
    expect(other).toMatchObject({ optOut: 'opted-out', revokedUnderSameConsent: false, existing: { consentId: undefined } });
  });
});

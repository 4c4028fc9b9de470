import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import { devIdpToken } from '../src/identity/humans.js';
import {
  getJson,
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  latestAuditEvents,
  NEW_PAYER_ORG,
  OTHER_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestPartner,
  type TestService,
} from './support/service.js';

/**
 * Link management (issue 14, like HAPI MDM's link operations): staff list a partner's member links with their
 * consents; a supervisor revokes one, audited in the same transaction, and the partner's Patient read and
 * search stop finding the member at once.
 */
let ts: TestService;
let partner: TestPartner;
let token: string;
let memberUuid: string;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW]);
  partner = await registerTestPartner(ts);
  token = await partnerToken(ts, partner);
  const matched = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
  expect(matched.status).toBe(200);
  memberUuid = matched.body.parameter.find((p: any) => p.name === 'MemberId').valueReference.reference.split('/').pop();
}, 60_000);
afterAll(() => ts?.stop());

const staff = (user: string, roles: string[]) => devIdpToken(ts.service.deps.db, ts.config, user, roles);
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;
async function admin(method: string, path: string, bearer: string | undefined, body?: unknown) {
  const res = await fetch(`${ts.url}/admin${path}`, {
    method,
    headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
}
const partnerOrg = `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`;

describe('link management', () => {
  let linkId: string;

  it("lists a partner's links with the consent each stands on", async () => {
    const list = await admin('GET', `/links?partner=${encodeURIComponent(partnerOrg)}`, await staff('rae', ['reviewer']));
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(1);
    const [link] = list.body;
    expect(link).toMatchObject({
      memberRef: memberUuid,
      memberId: '55678',
      partnerClientId: partner.clientId,
      partnerOrganization: partnerOrg,
      status: 'active',
      revokedAt: null,
      consent: { policyUri: expect.stringContaining('sensitive'), periodStart: expect.any(String), periodEnd: expect.any(String) },
    });
    linkId = link.linkId;
    // Filters: another partner has none; by client, member and status it is found.
    expect((await admin('GET', `/links?partner=${encodeURIComponent(`${OTHER_PAYER_ORG.system}|${OTHER_PAYER_ORG.value}`)}`, await staff('rae', ['reviewer']))).body).toEqual([]);
    expect((await admin('GET', `/links?client=${partner.clientId}&member=55678&status=active`, await staff('aud', ['auditor']))).body).toHaveLength(1);
    expect((await admin('GET', '/links?status=revoked', await staff('aud', ['auditor']))).body).toEqual([]);
    const one = await admin('GET', `/links/${linkId}`, await staff('rae', ['reviewer']));
    expect(one.status).toBe(200);
    expect(one.body.linkId).toBe(linkId);
  });

  it('refuses malformed list filters with 400', async () => {
    const reviewer = await staff('rae', ['reviewer']);
    for (const query of ['status=sideways', 'limit=abc', 'limit=0', 'partner=no-bar', 'colour=red']) {
      const res = await admin('GET', `/links?${query}`, reviewer);
      expect(res.status, query).toBe(400);
      expect(reason(res.body), query).toBe('query-invalid');
    }
  });

  it('answers 404 for a link that does not exist, or an id that cannot be one', async () => {
    const reviewer = await staff('rae', ['reviewer']);
    expect((await admin('GET', '/links/00000000-0000-0000-0000-000000000000', reviewer)).status).toBe(404);
    expect((await admin('GET', '/links/not-a-uuid', reviewer)).status).toBe(404);
    const supervisor = await staff('sue', ['supervisor']);
    const missing = await admin('POST', '/links/00000000-0000-0000-0000-000000000000/revoke', supervisor, { reason: 'x' });
    expect(missing.status).toBe(404);
    expect(reason(missing.body)).toBe('link-not-found');
    expect((await admin('POST', '/links/not-a-uuid/revoke', supervisor, { reason: 'x' })).status).toBe(404);
  });

  it('needs a staff token and a role: 401 without one or with a partner token, 403 for staff with no role', async () => {
    const none = await admin('GET', '/links', undefined);
    expect(none.status).toBe(401);
    expect((await admin('GET', '/links', await staff('nobody', []))).status).toBe(403);
    expect((await admin('GET', '/links', token)).status).toBe(401);
  });

  it('lets only a supervisor revoke', async () => {
    for (const roles of [['reviewer'], ['admin', 'auditor']]) {
      const res = await admin('POST', `/links/${linkId}/revoke`, await staff('not-a-supervisor', roles), { reason: 'wrong person' });
      expect(res.status, roles.join()).toBe(403);
      expect(reason(res.body)).toBe('role-missing');
    }
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(200);
  });

  it('refuses a revocation without a reason', async () => {
    const supervisor = await staff('sue', ['supervisor']);
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'ok', extra: 1 }, 'not json']) {
      const res = await admin('POST', `/links/${linkId}/revoke`, supervisor, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
  });

  it("revokes a link: audited with the member, and the partner's read and search end at once", async () => {
    expect((await getJson(ts, `/fhir/Patient?identifier=55678`, token)).body.total).toBe(1);
    const revoked = await admin('POST', `/links/${linkId}/revoke`, await staff('sue', ['supervisor']), { reason: 'member disputes the match' });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ linkId, status: 'revoked', revokedBy: 'sue', revokeReason: 'member disputes the match' });
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'links-revoke', outcome: 'success', http_status: 200, reason_code: 'link-revoked', member_ref: memberUuid });
    expect(event!.details).toMatchObject({ link: linkId, partnerClientId: partner.clientId });

    // The same token, the very next request.
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(404);
    const search = await getJson(ts, `/fhir/Patient?identifier=55678`, token);
    expect(search.status).toBe(200);
    expect(search.body.total).toBe(0);
    expect((await admin('GET', '/links?status=revoked', await staff('aud', ['auditor']))).body).toHaveLength(1);
  });

  it('answers 409 to revoking a revoked link', async () => {
    const again = await admin('POST', `/links/${linkId}/revoke`, await staff('sue', ['supervisor']), { reason: 'again' });
    expect(again.status).toBe(409);
    expect(reason(again.body)).toBe('link-already-revoked');
  });

  it('keeps the link revoked, and discloses nothing, when the partner sends the same request again', async () => {
    const again = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    // Not even the member id: the revocation holds against the Consent it was made under.
    expect(again.status).toBe(422);
    expect(reason(again.body)).toBe('link-revoked');
    expect(JSON.stringify(again.body)).not.toContain('55678');
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(404);
    const link = await admin('GET', `/links/${linkId}`, await staff('rae', ['reviewer']));
    expect(link.body.status).toBe('revoked');
  });

  it('relinks when the partner sends a new consent (the member agreed again)', async () => {
    const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
    (request.parameter!.find((p) => p.name === 'Consent')!.resource as { id?: string }).id = 'consent-given-again';
    expect((await postMemberMatch(ts, token, request)).status).toBe(200);
    const link = await admin('GET', `/links/${linkId}`, await staff('rae', ['reviewer']));
    expect(link.body).toMatchObject({ status: 'active', revokedAt: null, revokedBy: null });
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(200);
  });

  it('the same request with a new consent sent six times at once: one link, one new consent, every event naming both', async () => {
    // Each request plans before any of them has written, so each picks a new Consent id: one statement wins, the
    // others' statements find another id and write nothing, and they fall back to a transaction (docs/audit.md).
    const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
    (request.parameter!.find((p) => p.name === 'Consent')!.resource as { id?: string }).id = 'consent-sent-six-times';
    const answers = await Promise.all(Array.from({ length: 6 }, () => postMemberMatch(ts, token, request)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const db = ts.service.deps.db;
    const links = await db.selectFrom('member_links').select(['id', 'consent_id']).where('member_uuid', '=', memberUuid).execute();
    expect(links).toHaveLength(1);
    expect(links[0]!.id).toBe(linkId);
    const consents = await db.selectFrom('consents').select('id').where('member_uuid', '=', memberUuid).execute();
    expect(consents).toHaveLength(3); // the first, the one given again, this one
    const events = (await latestAuditEvents(ts, 20)).filter((e) => e.operation === 'member-match').slice(0, 6);
    expect(events.map((e) => e.details)).toEqual(Array.from({ length: 6 }, () => expect.objectContaining({ linkId, consentId: links[0]!.consent_id })));
  });

  it('leaves an audit chain that verifies', async () => {
    expect((await verifyAuditChain(ts.service.deps.db)).ok).toBe(true);
  });
});

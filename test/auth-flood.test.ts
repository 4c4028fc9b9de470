import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disablePartnerClient } from '../src/identity/partner-clients.js';
import { signClientAssertion, generatePartnerKeyPair } from '../src/cli/partner-tools.js';
import { HL7_EXAMPLE_MEMBER_ROW, importRows, partnerAssertion, partnerToken, postMemberMatch, registerTestPartner, startTestService, type TestService } from './support/service.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { NEW_PAYER_ORG } from './support/service.js';

/**
 * An unauthenticated flood: throttled per source address before any token is verified, and audited in
 * aggregate, so it neither writes a row per request nor crowds out a legitimate caller. The token endpoint
 * does not tell an unknown client from a disabled one or a bad signature.
 */
let ts: TestService;
const FLOOD_SOURCE = '203.0.113.7';

beforeAll(async () => {
  ts = await startTestService({ AUTH_FAILURES_PER_MINUTE: '20', AUTH_FAILURES_AUDITED_PER_MINUTE: '5', RATE_LIMIT_PER_MINUTE: '100000' });
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW]);
});
afterAll(() => ts?.stop());

async function auditRows(): Promise<number> {
  const db = ts.service.deps.db;
  return Number((await db.selectFrom('audit_events').select(db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
}

describe('failed authentication', () => {
  it('throttles an unauthenticated flood from one address and audits it in aggregate, while another caller is served', async () => {
    const partner = await partnerToken(ts, await registerTestPartner(ts));
    const before = await auditRows();
    const statuses: number[] = [];
    const retryAfter: (string | null)[] = [];
    // 20 connections' worth of bad-token requests, 200 in all, from one (proxied) source address.
    const lanes = Array.from({ length: 20 }, async () => {
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${ts.url}/fhir/Patient/$member-match`, {
          method: 'POST',
          headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/fhir+json', 'x-forwarded-for': FLOOD_SOURCE },
          body: '{}',
        });
        statuses.push(res.status);
        if (res.status === 429) retryAfter.push(res.headers.get('retry-after'));
        await res.arrayBuffer();
      }
    });
    await Promise.all(lanes);
    expect(statuses).toHaveLength(200);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // At most one minute's allowance per minute boundary the flood straddles.
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(40);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(160);
    expect(retryAfter.every((r) => Number(r) > 0)).toBe(true);

    // A legitimate caller from elsewhere is served meanwhile.
    expect((await postMemberMatch(ts, partner, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(200);

    // Rows: the first few failures of each minute one by one, the rest as one aggregate per minute.
    await ts.service.deps.authFailures!.flush(true);
    const written = (await auditRows()) - before;
    expect(written).toBeLessThanOrEqual(2 * 5 + 2 + 1);
    const aggregates = await ts.service.deps.db.selectFrom('audit_events').select(['source_ip', 'reason_code', 'details']).where('operation', '=', 'authentication-failures').execute();
    expect(aggregates.length).toBeGreaterThanOrEqual(1);
    expect(aggregates.every((a) => a.source_ip === FLOOD_SOURCE)).toBe(true);
    const total = aggregates.reduce((n, a) => n + (a.details as { failures: number; throttled: number }).failures + (a.details as { throttled: number }).throttled, 0);
    expect(total).toBe(200);
  });

  it('answers an unknown client, a disabled client, an unknown key and a bad signature at the token endpoint alike', async () => {
    const partner = await registerTestPartner(ts);
    const disabled = await registerTestPartner(ts);
    await disablePartnerClient(ts.service.deps.db, disabled.clientId);
    const stranger = await generatePartnerKeyPair('ES384');
    const form = (assertion: string) =>
      new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'system/Patient.$member-match',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      });
    const answers = [];
    for (const assertion of [
      await signClientAssertion({ clientId: 'mm-nobody', tokenUrl: ts.config.tokenUrl, privateJwk: stranger.privateJwk }),
      await partnerAssertion(ts, disabled),
      await partnerAssertion(ts, partner, { privateJwk: stranger.privateJwk }),
      await partnerAssertion(ts, partner, { privateJwk: stranger.privateJwk, kid: partner.keys.publicJwks.keys[0]!.kid as string }),
    ]) {
      const res = await fetch(`${ts.url}/oauth/token`, { method: 'POST', body: form(assertion), headers: { 'x-forwarded-for': '198.51.100.9' } });
      answers.push({ status: res.status, body: await res.json() });
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[1]).toEqual(answers[2]);
    expect(answers[2]).toEqual(answers[3]);
    expect(answers[0]).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    // The audit trail keeps the precise reasons.
    const reasons = await ts.service.deps.db.selectFrom('audit_events').select('reason_code').where('operation', '=', 'token').where('outcome', '=', 'failure').orderBy('seq', 'desc').limit(4).execute();
    expect(reasons.map((r) => r.reason_code).sort()).toEqual(['assertion-bad-signature', 'assertion-unknown-kid', 'client-disabled', 'unknown-client']);
  });
});

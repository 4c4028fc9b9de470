import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coverage, Parameters } from 'fhir/r4.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import {
  importRows,
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
  HL7_EXAMPLE_MEMBER_ROW,
} from './support/service.js';

/** Behavioural limits with small thresholds: rate limit, and the two brute-force patterns HRex warns about. */
let ts: TestService;

beforeAll(async () => {
  ts = await startTestService({
    RATE_LIMIT_PER_MINUTE: '8',
    BRUTE_FORCE_CARD_VARIANTS: '3',
    BRUTE_FORCE_UNMATCHED: '4',
    MATCH_LOCKOUT_SECONDS: '600',
  });
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
  ]);
});
afterAll(() => ts?.stop());

const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

function withCard(value: string, given = 'Patricia'): Parameters {
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
  const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as unknown as { name: { given: string[] }[]; identifier?: unknown };
  patient.name[0]!.given = [given];
  delete patient.identifier;
  const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
  coverage.identifier = [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, value }];
  delete coverage.subscriberId;
  return request;
}

describe('behavioural limits', () => {
  it('answers 429 with Retry-After beyond the per-client request rate, and audits it', async () => {
    const token = await partnerToken(ts, await registerTestPartner(ts));
    const statuses: number[] = [];
    let last;
    // 20 requests: whichever minute boundary they straddle, one window holds more than 8.
    for (let i = 0; i < 20; i++) {
      last = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
      statuses.push(last.status);
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(reason(last!.body)).toBe('rate-limited');
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ http_status: 429, reason_code: 'rate-limited', outcome: 'failure' });
  });

  it('locks a client out after the same person is tried with many card numbers, with a security alert', async () => {
    const partner = await registerTestPartner(ts);
    const token = await partnerToken(ts, partner);
    for (const card of ['X-1', 'X-2', 'X-3', 'X-4']) await postMemberMatch(ts, token, withCard(card, 'Patrizia'));
    const alerts = await ts.service.deps.db.selectFrom('audit_events').selectAll().where('operation', '=', 'security-alert').where('client_id', '=', partner.clientId).execute();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ reason_code: 'brute-force:card-variants' });
    expect(JSON.stringify(alerts[0])).not.toMatch(/Patri|1974|X-\\d/);

    const locked = await postMemberMatch(ts, token, withCard('DH10001235'));
    expect(locked.status).toBe(429);
    expect(reason(locked.body)).toBe('matching-locked');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ http_status: 429, reason_code: 'matching-locked', client_id: partner.clientId });

    // Another client is not affected.
    const other = await partnerToken(ts, await registerTestPartner(ts));
    expect((await postMemberMatch(ts, other, withCard('DH10001235'))).status).toBe(200);
  });

  it('locks a client out after many requests that match nobody', async () => {
    const partner = await registerTestPartner(ts);
    const token = await partnerToken(ts, partner);
    const names = ['Ann', 'Bea', 'Cid', 'Dot', 'Eve'];
    for (const given of names) {
      const res = await postMemberMatch(ts, token, withCard(`NOPE-${given}`, given));
      expect(res.status).toBe(422);
    }
    const locked = await postMemberMatch(ts, token, withCard('DH10001235'));
    expect(reason(locked.body)).toBe('matching-locked');
    const alerts = await ts.service.deps.db.selectFrom('audit_events').select('reason_code').where('operation', '=', 'security-alert').where('client_id', '=', partner.clientId).execute();
    expect(alerts.map((a) => a.reason_code)).toEqual(['brute-force:unmatched-requests']);
  });
});

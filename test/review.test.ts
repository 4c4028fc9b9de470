import type { Coverage, Parameters, Patient } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { startMetricsServer } from '../src/http/metrics-server.js';
import { devIdpToken } from '../src/identity/humans.js';
import {
  CONFLICT_PAIR_ROWS,
  importRows,
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
} from './support/service.js';

/** The review queue: uncertain matches become cases that staff decide, and the partner then gets the answer. */
let ts: TestService;
let token: string;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true', REVIEW_LEASE_SECONDS: '2', REVIEW_RETRY_AFTER_SECONDS: '60' });
  await importRows(ts, CONFLICT_PAIR_ROWS);
  token = await partnerToken(ts, await registerTestPartner(ts));
});
afterAll(() => ts?.stop());

function requestFor(given: string, family: string, birthDate: string, gender: 'male' | 'female', subscriberId: string): Parameters {
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
  const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as Patient;
  Object.assign(patient, { name: [{ family, given: [given] }], birthDate, gender, identifier: undefined, address: undefined, telecom: undefined });
  const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
  delete coverage.identifier;
  coverage.subscriberId = subscriberId;
  return request;
}
const sam = () => requestFor('Sam', 'Lee', '2001-01-01', 'male', 'L200');
const kim = () => requestFor('Kim', 'Park', '1990-05-05', 'female', 'L300');
const ray = () => requestFor('Ray', 'Diaz', '1985-03-03', 'male', 'L400');
const staff = (user: string, roles: string[]) => devIdpToken(ts.service.deps.db, ts.config, user, roles);
async function call(method: string, path: string, bearer: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${ts.url}/review${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(options.body ? { 'content-type': 'application/json' } : {}), ...options.headers },
    body: options.body ? JSON.stringify(options.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get('etag'), body: text ? (JSON.parse(text) as any) : undefined };
}
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

describe('review queue', () => {
  let samCase: string;
  let claimedByOthers: string[] = [];

  it('turns an uncertain match into one case with its outbox row, and tells the partner when to ask again', async () => {
    const first = await postMemberMatch(ts, token, sam());
    expect(first.status).toBe(422);
    expect(reason(first.body)).toBe('manual-review-required');
    expect(first.headers.get('retry-after')).toBe('60');
    const [event] = await latestAuditEvents(ts, 1);
    samCase = (event!.details as { reviewCase: string }).reviewCase;
    expect(first.body.issue[0].diagnostics).toContain(samCase);

    const again = await postMemberMatch(ts, token, sam());
    expect(reason(again.body)).toBe('manual-review-required');
    const cases = await ts.service.deps.db.selectFrom('review_cases').select('id').execute();
    expect(cases.map((c) => c.id)).toEqual([samCase]);
    const outbox = await ts.service.deps.db.selectFrom('review_outbox').selectAll().execute();
    expect(outbox.map((o) => o.case_id)).toEqual([samCase]);
  });

  it('gives two reviewers claiming at once two different cases', async () => {
    await postMemberMatch(ts, token, kim());
    const [a, b] = await Promise.all([call('POST', '/cases/claim', await staff('ann', ['reviewer'])), call('POST', '/cases/claim', await staff('ben', ['reviewer']))]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.id).not.toBe(b.body.id);
    claimedByOthers = [a.body.id, b.body.id];
    // Side by side: the request and each candidate, contact details masked, with per-field weights.
    expect(a.body.candidates).toHaveLength(2);
    expect(a.body.candidates[0].explanation.length).toBeGreaterThan(0);
    expect(a.body.request).toMatchObject({ birthDate: expect.any(String) });
  });

  it('returns a case whose lease expired to the queue', async () => {
    await new Promise((r) => setTimeout(r, 2_300));
    const again = await call('POST', '/cases/claim', await staff('cal', ['reviewer']));
    expect(again.status).toBe(200);
    expect(claimedByOthers).toContain(again.body.id); // a case whose lease lapsed, claimed anew
    expect(again.body.leaseOwner).toBe('cal');
  });

  it('lets the reviewer decide with the ETag; a stale ETag is 412; then the partner gets the member', async () => {
    await postMemberMatch(ts, token, ray());
    const reviewerToken = await staff('dee', ['reviewer']);
    let claimed = await call('POST', '/cases/claim', reviewerToken);
    while (claimed.status === 200 && claimed.body.candidates[0].member.family !== 'Diaz') {
      claimed = await call('POST', '/cases/claim', reviewerToken);
    }
    expect(claimed.status).toBe(200);
    const chosen = claimed.body.candidates.find((c: any) => c.memberRef)!.memberRef as string;
    const stale = await call('POST', `/cases/${claimed.body.id}/decision`, reviewerToken, {
      body: { decision: 'match', memberRef: chosen, reason: 'confirmed by phone' },
      headers: { 'if-match': `"${Number(claimed.body.version) - 1}"` },
    });
    expect(stale.status).toBe(412);
    const decided = await call('POST', `/cases/${claimed.body.id}/decision`, reviewerToken, {
      body: { decision: 'match', memberRef: chosen, reason: 'confirmed by phone' },
      headers: { 'if-match': claimed.etag! },
    });
    expect(decided.status).toBe(200);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'review-decide', actor_class: 'human', client_id: 'human:dee', member_ref: chosen, reason_code: 'decided-match' });
    // The consent is #sensitive: high risk, so a second, different reviewer must confirm (four eyes).
    expect(decided.body).toMatchObject({ status: 'awaiting-confirmation', highRisk: true, decidedBy: 'dee' });
    expect(reason((await postMemberMatch(ts, token, ray())).body)).toBe('manual-review-required');
    const self = await call('POST', `/cases/${claimed.body.id}/confirm`, reviewerToken, { body: { agree: true, reason: 'me again' }, headers: { 'if-match': decided.etag! } });
    expect(self.status).toBe(403);
    expect(reason(self.body)).toBe('four-eyes');
    const notReviewer = await call('POST', `/cases/${claimed.body.id}/confirm`, await staff('hal', ['auditor']), { body: { agree: true, reason: 'x' }, headers: { 'if-match': decided.etag! } });
    expect(reason(notReviewer.body)).toBe('role-missing');
    const confirmed = await call('POST', `/cases/${claimed.body.id}/confirm`, await staff('ivy', ['supervisor']), { body: { agree: true, reason: 'agreed' }, headers: { 'if-match': decided.etag! } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ status: 'decided', confirmedBy: 'ivy' });

    // The partner resubmits the same request: the manual decision answers, and the link is written.
    const answered = await postMemberMatch(ts, token, ray());
    expect(answered.status).toBe(200);
    const memberId = answered.body.parameter.find((p: any) => p.name === 'MemberIdentifier').valueIdentifier.value;
    expect(['30005', '30006']).toContain(memberId);
    const [matchEvent] = await latestAuditEvents(ts, 1);
    expect(matchEvent!.details).toMatchObject({ method: 'manual-review', reviewCase: claimed.body.id });

    // Only another manual decision changes it: a reviewer may not reopen, a supervisor may (and it is audited).
    const view = await call('GET', `/cases/${claimed.body.id}`, reviewerToken);
    expect((await call('POST', `/cases/${claimed.body.id}/reopen`, reviewerToken, { body: { reason: 'x' }, headers: { 'if-match': view.etag! } })).status).toBe(403);
    const reopened = await call('POST', `/cases/${claimed.body.id}/reopen`, await staff('lee', ['supervisor']), { body: { reason: 'member disputes the match' }, headers: { 'if-match': view.etag! } });
    expect(reopened.body).toMatchObject({ status: 'pending', decision: null });
    expect(reason((await postMemberMatch(ts, token, ray())).body)).toBe('manual-review-required');
  });

  it('answers asynchronously when asked: 202 and a status URL, 202 while pending, then 200 with the member', async () => {
    const lou = requestFor('Lou', 'Chen', '1970-07-07', 'male', 'L500');
    const accepted = await postMemberMatch(ts, token, lou, { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const statusUrl = accepted.headers.get('content-location')!;
    expect(statusUrl).toMatch(/\/fhir\/member-match-status\/[0-9a-f-]{36}$/);
    const statusPath = statusUrl.replace(ts.config.fhirBaseUrl, '/fhir');
    const poll = () => fetch(`${ts.url}${statusPath}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await poll()).status).toBe(202);
    const caseId = statusUrl.split('/').pop()!;

    const reviewerToken = await staff('joe', ['reviewer']);
    let claimed = await call('POST', '/cases/claim', reviewerToken);
    while (claimed.status === 200 && claimed.body.id !== caseId) claimed = await call('POST', '/cases/claim', reviewerToken);
    const decided = await call('POST', `/cases/${caseId}/decision`, reviewerToken, {
      body: { decision: 'match', memberRef: claimed.body.candidates[0].memberRef, reason: 'confirmed' },
      headers: { 'if-match': claimed.etag! },
    });
    expect((await poll()).status).toBe(202); // awaiting the second reviewer
    await call('POST', `/cases/${caseId}/confirm`, await staff('kay', ['supervisor']), { body: { agree: true, reason: 'agreed' }, headers: { 'if-match': decided.etag! } });

    const done = await poll();
    expect(done.status).toBe(200);
    const parameters = (await done.json()) as any;
    expect(['30007', '30008']).toContain(parameters.parameter.find((p: any) => p.name === 'MemberIdentifier').valueIdentifier.value);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'member-match-status', reason_code: 'matched', member_ref: claimed.body.candidates[0].memberRef });

    // Another organisation learns nothing from the status URL.
    const other = await registerTestPartner(ts, { organization: { system: 'http://hl7.org/fhir/sid/us-npi', value: '5555555555' } });
    const stranger = await fetch(`${ts.url}${statusPath}`, { headers: { authorization: `Bearer ${await partnerToken(ts, other)}` } });
    expect(stranger.status).toBe(404);
  });

  it('reports counts by state and reason and the oldest open case', async () => {
    const stats = await call('GET', '/stats', await staff('gus', ['supervisor']));
    expect(stats.status).toBe(200);
    expect(stats.body.byStatus.decided).toBe(1); // confirmed by a second reviewer (the other was reopened)
    expect((stats.body.byStatus.pending ?? 0) + (stats.body.byStatus.claimed ?? 0)).toBe(3);
    expect(stats.body.openByReason.conflict).toBe(3);
    expect(stats.body.oldestOpenAgeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('lists cases filtered by status, reason and age', async () => {
    const reviewerToken = await staff('max', ['reviewer']);
    const conflicts = await call('GET', '/cases?reason=conflict&limit=50', reviewerToken);
    expect(conflicts.status).toBe(200);
    expect(conflicts.body.length).toBeGreaterThanOrEqual(3);
    expect(conflicts.body.every((c: any) => c.reason === 'conflict')).toBe(true);
    expect((await call('GET', '/cases?status=decided', reviewerToken)).body.every((c: any) => c.status === 'decided')).toBe(true);
    expect((await call('GET', '/cases?olderThan=86400', reviewerToken)).body).toEqual([]);
    expect((await call('GET', '/cases?limit=500', reviewerToken)).status).toBe(400);
  });

  it('counts decisions and opened cases in the Prometheus metrics (served on METRICS_PORT)', async () => {
    const metricsServer = await startMetricsServer(0, '127.0.0.1');
    const text = await (await fetch(`${metricsServer.url}/metrics`)).text();
    await metricsServer.close();
    expect(text).toMatch(/member_match_decisions_total\{door="member-match",outcome="review"\} [1-9]/);
    expect(text).toMatch(/review_cases_opened_total [1-9]/);
  });

  it('refuses a human without the reviewer role, and a decision without the claim', async () => {
    const auditor = await call('POST', '/cases/claim', await staff('eve', ['auditor']));
    expect(auditor.status).toBe(403);
    expect(reason(auditor.body)).toBe('role-missing');
    const view = await call('GET', `/cases/${samCase}`, await staff('fay', ['reviewer']));
    const unclaimed = await call('POST', `/cases/${samCase}/decision`, await staff('fay', ['reviewer']), {
      body: { decision: 'no-match', reason: 'not the same person' },
      headers: { 'if-match': view.etag! },
    });
    expect([403, 412]).toContain(unclaimed.status);
  });
});

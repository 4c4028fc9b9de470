import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { devIdpToken } from '../src/identity/humans.js';
import { findMemberSummaryByMemberId } from '../src/members/member-index.js';
import { bulkMatch, memberMatchRequest, reconcileRoster, rosterOf, workloadToken, type TestPerson } from './support/doors.js';
import {
  getJson,
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  startTestWorkers,
  type TestService,
} from './support/service.js';

/**
 * Response headers (issue 11): every answer of the API routers (/fhir, /oauth, /review, /rosters, /admin), which
 * carry PHI or credentials, is `Cache-Control: no-store`; every answer is `X-Content-Type-Options: nosniff`; no
 * answer says `X-Powered-By`, the queue dashboard's (bull-board's own Express app) included.
 *
 * Every response the test service gives in this file is recorded (fetch is wrapped), so the assertions cover
 * the helpers' requests too: token requests, bulk status polls, roster status and results.
 */
let ts: TestService;
let workers: { stop(): Promise<void> };
let partner: string;
let memberUuid: string;

interface Seen {
  method: string;
  path: string;
  status: number;
  headers: Headers;
}
const seen: Seen[] = [];
const realFetch = globalThis.fetch;

const SAM: TestPerson = { given: 'Sam', family: 'Lee', birthDate: '2001-01-01', gender: 'male', card: 'NOT-OURS-1' };

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true', BATCH_CHUNK_SIZE: '4', BATCH_RETRY_AFTER_SECONDS: '1' });
  const origin = new URL(ts.url).origin;
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await realFetch(input, init);
    const url = new URL(input instanceof Request ? input.url : input.toString());
    if (url.origin === origin) seen.push({ method: init?.method ?? 'GET', path: url.pathname, status: response.status, headers: response.headers });
    return response;
  };
  workers = await startTestWorkers(ts);
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
    // Two records that fit Sam Lee equally well: a request about him opens a review case.
    '30001,L200,self,Sam,,Lee,,2001-01-01,male,,,,,,,CL1,,,,',
    '30002,L200,child,Sam,,Lee,,2001-01-01,male,,,,,,,CL2,,,,',
  ]);
  memberUuid = (await findMemberSummaryByMemberId(ts.service.deps.db, '55678'))!.id;
  const scopes = ['system/Patient.$member-match', 'system/Group.$bulk-member-match', 'system/Patient.rs'];
  partner = await partnerToken(ts, await registerTestPartner(ts, { scopes }), scopes.join(' '));
}, 60_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await workers?.stop();
  await ts?.stop();
});

const staff = (user: string, roles: string[]) => devIdpToken(ts.service.deps.db, ts.config, user, roles);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function expectHeaders(response: Seen | Response, noStore: boolean, label = ''): void {
  const where = `${label} ${'path' in response ? `${response.method} ${response.path} → ${response.status}` : response.url}`;
  expect(response.headers.get('x-content-type-options'), where).toBe('nosniff');
  expect(response.headers.get('x-powered-by'), where).toBeNull();
  if (noStore) expect(response.headers.get('cache-control'), where).toBe('no-store');
}

function lastSeen(method: string, path: RegExp): Seen {
  const found = seen.filter((s) => s.method === method && path.test(s.path)).at(-1);
  expect(found, `${method} ${path} was requested`).toBeDefined();
  return found!;
}

describe('response headers', () => {
  it('marks $member-match answers, Patient read and search no-store, nosniff', async () => {
    const matched = await postMemberMatch(ts, partner, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(matched.status).toBe(200);
    expectHeaders(lastSeen('POST', /^\/fhir\/Patient\/\$member-match$/), true, '$member-match');
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, partner)).status).toBe(200);
    expectHeaders(lastSeen('GET', /^\/fhir\/Patient\/[0-9a-f-]{36}$/), true, 'Patient read');
    expect((await getJson(ts, '/fhir/Patient?identifier=55678', partner)).status).toBe(200);
    expectHeaders(lastSeen('GET', /^\/fhir\/Patient$/), true, 'Patient search');
    // The token response too (it carries a credential).
    expectHeaders(lastSeen('POST', /^\/oauth\/token$/), true, 'token');
  });

  it('marks review cases no-store', async () => {
    const review = await postMemberMatch(ts, partner, memberMatchRequest(SAM, NEW_PAYER_ORG));
    expect(review.status).toBe(422);
    const claim = await fetch(`${ts.url}/review/cases/claim`, { method: 'POST', headers: bearer(await staff('ann', ['reviewer'])) });
    expect(claim.status).toBe(200);
    expectHeaders(claim, true, 'claim');
    const { id } = (await claim.json()) as { id: string };
    const view = await fetch(`${ts.url}/review/cases/${id}`, { headers: bearer(await staff('ann', ['reviewer'])) });
    expect(view.status).toBe(200);
    expectHeaders(view, true, 'case');
    const list = await fetch(`${ts.url}/review/cases`, { headers: bearer(await staff('ann', ['reviewer'])) });
    expect(list.status).toBe(200);
    expectHeaders(list, true, 'case list');
  });

  it('marks bulk and roster results no-store', async () => {
    const bulk = await bulkMatch(ts, partner, [hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' })]);
    expect(bulk.status).toBe(202);
    expect(bulk.result?.resourceType).toBe('Parameters');
    expectHeaders(lastSeen('POST', /\$bulk-member-match$/), true, 'bulk kick-off');
    const result = seen.filter((s) => s.method === 'GET' && s.path.includes('bulk') && s.status === 200).at(-1);
    expect(result, 'the bulk result was fetched').toBeDefined();
    expectHeaders(result!, true, 'bulk result');

    const lines = await reconcileRoster(ts, await workloadToken(ts, 'system:serviceaccount:batch:headers'), rosterOf([SAM]));
    expect(lines).toHaveLength(1);
    expectHeaders(lastSeen('POST', /^\/rosters$/), true, 'roster upload');
    expectHeaders(lastSeen('GET', /^\/rosters\/[^/]+$/), true, 'roster status');
    expectHeaders(lastSeen('GET', /^\/rosters\/[^/]+\/results$/), true, 'roster results');
  });

  it('sends no X-Powered-By from the queue dashboard (bull-board), and marks it no-store', async () => {
    const session = await fetch(`${ts.url}/admin/session`, { method: 'POST', headers: bearer(await staff('alice', ['admin'])) });
    expect(session.status).toBe(204);
    expectHeaders(session, true, 'admin session');
    const cookie = session.headers.get('set-cookie')!.split(';')[0]!;
    const api = await fetch(`${ts.url}/admin/queues/api/queues`, { headers: { cookie } });
    expect(api.status).toBe(200);
    expectHeaders(api, true, 'dashboard api');
    const page = await fetch(`${ts.url}/admin/queues`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expectHeaders(page, true, 'dashboard page');
    // One of the page's own scripts, served by bull-board's express.static.
    const asset = /src="([^"]+\.js)"/.exec(await page.text())?.[1];
    expect(asset).toBeDefined();
    const script = await fetch(new URL(asset!, `${ts.url}/admin/queues/`), { headers: { cookie } });
    expect(script.status).toBe(200);
    expectHeaders(script, true, 'dashboard asset');
  });

  it('marks errors of the API routers no-store, and every other answer nosniff without X-Powered-By', async () => {
    for (const path of ['/fhir/Patient/not-a-member', '/fhir/nothing-here', '/review/cases', '/rosters/none', '/admin/audit/verify', '/oauth/token']) {
      const response = await fetch(`${ts.url}${path}`);
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
      expectHeaders(response, true, 'error');
    }
    for (const path of ['/healthz', '/readyz', '/.well-known/smart-configuration', '/nowhere', '/metrics']) {
      expectHeaders(await fetch(`${ts.url}${path}`), false, 'other');
    }
  });

  it('never sent X-Powered-By or left out nosniff on any response in this file', () => {
    expect(seen.length).toBeGreaterThan(20);
    for (const response of seen) expectHeaders(response, /^\/(fhir|oauth|review|rosters|admin)(\/|$)/.test(response.path), 'recorded');
  });
});

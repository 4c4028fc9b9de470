import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { devIdpToken } from '../src/identity/humans.js';
import { workloadToken } from './support/doors.js';
import { HL7_EXAMPLE_MEMBER_ROW, importRows, NEW_PAYER_ORG, partnerAssertion, partnerToken, registerTestPartner, startTestService, type TestService } from './support/service.js';

/**
 * Requests as a hostile or careless client sends them — corrupt encodings, NUL characters, deep and wide JSON,
 * huge values, malformed escapes, fuzzed bodies, headers and query strings — across every route. Each must be
 * answered with a 4xx (an OperationOutcome, or OAuth JSON under /oauth), never a 5xx, and none may leave an
 * effect behind: no link, consent, review case, batch job or opt-out. (Each refusal is itself audited: that
 * row is the record of the refusal, not an effect.)
 */
let ts: TestService;
let partner: string;
let staff: string;
let workload: string;
let assertion: () => Promise<string>;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true', RATE_LIMIT_PER_MINUTE: '100000', BRUTE_FORCE_UNMATCHED: '100000' });
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW]);
  const scopes = ['system/Patient.$member-match', 'system/Group.$bulk-member-match', 'system/Patient.rs'];
  const client = await registerTestPartner(ts, { scopes });
  partner = await partnerToken(ts, client, scopes.join(' '));
  assertion = () => partnerAssertion(ts, client);
  staff = await devIdpToken(ts.service.deps.db, ts.config, 'hostile-admin', ['admin', 'supervisor', 'reviewer']);
  workload = await workloadToken(ts, 'system:serviceaccount:batch:hostile');
}, 60_000);
afterAll(() => ts?.stop());

interface Attempt {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  bearer?: 'partner' | 'staff' | 'workload' | 'none';
}

async function send(a: Attempt): Promise<{ status: number; contentType: string; text: string }> {
  const token = { partner, staff, workload, none: undefined }[a.bearer ?? 'partner'];
  const response = await fetch(`${ts.url}${a.path}`, {
    method: a.method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...a.headers },
    ...(a.body !== undefined ? { body: a.body } : {}),
  });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** Effects a refused request must never leave behind. */
async function effects() {
  const db = ts.service.deps.db;
  const count = async (table: 'member_links' | 'consents' | 'review_cases' | 'batch_jobs' | 'sharing_opt_outs') =>
    Number((await db.selectFrom(table).select(db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  return { links: await count('member_links'), consents: await count('consents'), cases: await count('review_cases'), jobs: await count('batch_jobs'), optOuts: await count('sharing_opt_outs') };
}

const FHIR = { 'content-type': 'application/fhir+json' };
const ASYNC = { ...FHIR, prefer: 'respond-async' };
const UUID = '00000000-0000-4000-8000-000000000000';

/** Every route that takes a body, with what it needs to reach its parser. */
const BODY_ROUTES: Attempt[] = [
  { method: 'POST', path: '/fhir/Patient/$member-match', headers: FHIR },
  { method: 'POST', path: '/fhir/Group/$bulk-member-match', headers: ASYNC },
  { method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bearer: 'none' },
  { method: 'POST', path: `/review/cases/${UUID}/decision`, headers: { 'content-type': 'application/json', 'if-match': '"1"' }, bearer: 'staff' },
  { method: 'PUT', path: '/admin/consent-registry/55678', headers: { 'content-type': 'application/json' }, bearer: 'staff' },
  { method: 'POST', path: '/rosters', headers: { 'content-type': 'text/csv' }, bearer: 'workload' },
];

/** The HL7 example request with `change` applied to its parsed form. */
function exampleWith(change: (request: any) => void): string {
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }) as any;
  change(request);
  return JSON.stringify(request);
}
const part = (request: any, name: string) => request.parameter.find((p: any) => p.name === name).resource;

function nested(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function generatedAttempts(): Attempt[] {
  const seed = 20_261_129;
  const attempts: Attempt[] = [];
  // Fuzzed JSON bodies on every JSON route.
  for (const route of BODY_ROUTES.filter((r) => r.path !== '/rosters' && r.path !== '/oauth/token')) {
    for (const value of fc.sample(fc.jsonValue({ maxDepth: 6 }), { seed, numRuns: 25 })) attempts.push({ ...route, body: JSON.stringify(value) });
  }
  // Fuzzed HRex requests: the example with one field replaced by an arbitrary JSON value.
  const paths: ((r: any, v: unknown) => void)[] = [
    (r, v) => (part(r, 'MemberPatient').name = v),
    (r, v) => (part(r, 'MemberPatient').birthDate = v),
    (r, v) => (part(r, 'MemberPatient').identifier = v),
    (r, v) => (part(r, 'MemberPatient').address = v),
    (r, v) => (part(r, 'CoverageToMatch').identifier = v),
    (r, v) => (part(r, 'CoverageToMatch').subscriberId = v),
    (r, v) => (part(r, 'Consent').provision = v),
    (r, v) => (part(r, 'Consent').sourceReference = v),
    (r, v) => (r.parameter[0] = v),
    (r, v) => (r.resourceType = v),
  ];
  const values = fc.sample(fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: 'binary', maxLength: 40 })), { seed: seed + 1, numRuns: 120 });
  values.forEach((value, i) => {
    attempts.push({ ...BODY_ROUTES[0]!, body: exampleWith((r) => paths[i % paths.length]!(r, value)) });
  });
  // Fuzzed form bodies on /oauth/token.
  for (const text of fc.sample(fc.string({ unit: 'binary', maxLength: 200 }), { seed: seed + 2, numRuns: 25 })) attempts.push({ ...BODY_ROUTES[2]!, body: text });
  // Fuzzed rosters: arbitrary bytes as CSV and as NDJSON.
  for (const text of fc.sample(fc.string({ unit: 'binary', maxLength: 300 }), { seed: seed + 4, numRuns: 20 })) {
    attempts.push({ ...BODY_ROUTES[5]!, body: `member_id,given,family,birth_date,coverage_id\n${text}` });
    attempts.push({ ...BODY_ROUTES[5]!, headers: { 'content-type': 'application/fhir+ndjson' }, body: text });
  }
  // Fuzzed paths and query strings on the read routes.
  const pathSegments = fc.sample(fc.string({ unit: 'binary', maxLength: 30 }), { seed: seed + 3, numRuns: 30 });
  for (const segment of pathSegments) {
    attempts.push({ method: 'GET', path: `/fhir/Patient/${encodeURIComponent(segment)}` });
    attempts.push({ method: 'GET', path: `/fhir/Patient?identifier=${encodeURIComponent(segment)}` });
  }
  // Fuzzed headers: content types and encodings on $member-match.
  const types = ['text/plain', 'application/xml', 'application/fhir+json; charset=latin1', 'application/json; charset=utf-16', 'multipart/form-data', '', '*/*'];
  const encodings = ['gzip', 'deflate', 'br', 'compress', 'identity, gzip', 'x-unknown'];
  for (const type of types) attempts.push({ ...BODY_ROUTES[0]!, headers: { 'content-type': type }, body: exampleWith(() => undefined) });
  for (const encoding of encodings) attempts.push({ ...BODY_ROUTES[0]!, headers: { ...FHIR, 'content-encoding': encoding }, body: 'not compressed at all' });
  return attempts;
}

describe('hostile requests', () => {
  it('answers at least 300 generated hostile requests across every route without a 5xx, and no refused one writes anything', async () => {
    const attempts = generatedAttempts();
    expect(attempts.length).toBeGreaterThanOrEqual(300);
    const failures: string[] = [];
    let refused = 0;
    let last = await effects();
    for (const attempt of attempts) {
      const answer = await send(attempt);
      // A fuzzed value can happen to be valid (a 200 search, a request that still matches): such a request may
      // write its effect. What may never happen is a 5xx, or a refused request that leaves anything behind.
      if (answer.status >= 500) failures.push(`${attempt.method} ${attempt.path.slice(0, 60)} → ${answer.status}`);
      const now = await effects();
      if (answer.status >= 400) {
        refused += 1;
        expect(answer.text).not.toMatch(/at \w+ \(|node_modules|TypeError|RangeError|URIError/);
        expect(now, `${attempt.method} ${attempt.path} → ${answer.status} wrote something`).toEqual(last);
      }
      last = now;
    }
    expect(failures).toEqual([]);
    expect(refused).toBeGreaterThanOrEqual(250);
    // ~360 sequential requests: 17 s of the default 20 s when the suite shares 2 cores with browser tests.
  }, 90_000);

  it('refuses a corrupt Content-Encoding on every JSON route, as a 4xx with nothing written', async () => {
    const before = await effects();
    const corrupt = Buffer.from('this is not compressed data, whatever the header says');
    for (const route of BODY_ROUTES) {
      for (const encoding of ['gzip', 'deflate', 'br']) {
        const answer = await send({ ...route, headers: { ...route.headers, 'content-encoding': encoding }, body: corrupt });
        expect({ route: route.path, encoding, status: answer.status }).toMatchObject({ status: expect.any(Number) });
        expect(answer.status, `${route.path} ${encoding}`).toBeGreaterThanOrEqual(400);
        expect(answer.status, `${route.path} ${encoding}`).toBeLessThan(500);
      }
      // Truncated real gzip and deflate streams too.
      for (const [encoding, data] of [['gzip', gzipSync('{"resourceType":"Parameters"}').subarray(0, 12)], ['deflate', deflateSync('{"a":1}').subarray(0, 4)]] as const) {
        const answer = await send({ ...route, headers: { ...route.headers, 'content-encoding': encoding }, body: data });
        expect(answer.status, `${route.path} truncated ${encoding}`).toBeLessThan(500);
      }
    }
    expect(await effects()).toEqual(before);
  });

  it('refuses NUL characters in identifiers, address, Consent.sourceReference and query strings', async () => {
    const before = await effects();
    const bodies = [
      exampleWith((r) => (part(r, 'CoverageToMatch').identifier[0].value = 'DH1\u00000001235')),
      exampleWith((r) => (part(r, 'MemberPatient').address = [{ line: ['100 Example\u0000 Way'], postalCode: '62701' }])),
      exampleWith((r) => (part(r, 'Consent').sourceReference = { reference: 'DocumentReference/\u0000x' })),
    ];
    for (const body of bodies) {
      const answer = await send({ ...BODY_ROUTES[0]!, body });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text).issue[0].details.coding[0].code).toBe('nul-character');
    }
    const bulk = await send({ ...BODY_ROUTES[1]!, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'MemberBundle', part: JSON.parse(bodies[0]!).parameter }] }) });
    expect(bulk.status).toBe(400);
    for (const path of ['/fhir/Patient?identifier=%00abc', '/fhir/Patient/%00', `/fhir/member-match-status/${UUID}%00`]) {
      expect((await send({ method: 'GET', path })).status).toBe(400);
    }
    const token = await send({ ...BODY_ROUTES[2]!, body: `grant_type=client_credentials&client_assertion_type=x&client_assertion=${encodeURIComponent((await assertion()) + '\u0000')}` });
    expect(token.status).toBe(400);
    expect(JSON.parse(token.text).error).toBe('invalid_request');
    expect(await effects()).toEqual(before);
  });

  it('refuses 5,000 levels of nesting inside a resource, and at the top level', async () => {
    const inConsent = exampleWith((r) => (part(r, 'Consent').extension = [{ url: 'x', valueString: 'y' }])).replace('"valueString":"y"', `"valueString":"y","deep":${nested(5000)}`);
    for (const body of [inConsent, nested(5000)]) {
      const answer = await send({ ...BODY_ROUTES[0]!, body });
      expect(answer.status).toBe(400);
    }
    const wide = JSON.stringify({ resourceType: 'Parameters', parameter: Array.from({ length: 50_000 }, () => ({ name: 'x' })) });
    expect((await send({ ...BODY_ROUTES[0]!, body: wide })).status).toBeLessThan(500);
  });

  it('refuses a malformed URL escape with a 400', async () => {
    for (const path of ['/fhir/Patient/%E0%A4%A', '/fhir/bulk-member-match-status/%E0%A4%A', '/rosters/%ZZ', '/review/cases/%E0%A4%A']) {
      const answer = await send({ method: 'GET', path, bearer: path.startsWith('/review') ? 'staff' : path.startsWith('/rosters') ? 'workload' : 'partner' });
      expect(answer.status, path).toBe(400);
    }
  });

  it('refuses a birth date in the future as invalid, opening no review case', async () => {
    const before = await effects();
    const answer = await send({ ...BODY_ROUTES[0]!, body: exampleWith((r) => (part(r, 'MemberPatient').birthDate = '2999-12-25')) });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).issue[0].details.coding[0].code).toBe('birthdate-invalid');
    expect(await effects()).toEqual(before);
  });

  it('answers a huge value with a 413 or 400, not a 5xx', async () => {
    const huge = exampleWith((r) => (part(r, 'MemberPatient').name[0].family = 'x'.repeat(2_000_000)));
    const answer = await send({ ...BODY_ROUTES[0]!, body: huge });
    expect([400, 413]).toContain(answer.status);
  });
});

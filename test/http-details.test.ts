import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { releaseDate } from '../src/fhir/capability-statement.js';
import { withoutEmptyArrays } from '../src/fhir/resources.js';
import { devIdpToken } from '../src/identity/humans.js';
import { memberMatchRequest, type TestPerson } from './support/doors.js';
import {
  CONFLICT_PAIR_ROWS,
  getJson,
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
} from './support/service.js';

/**
 * The HTTP details of issue 14: status codes (428, 405), headers (Allow, WWW-Authenticate per RFC 6750),
 * discovery (scopes listed once), FHIR JSON (self link with its query, no empty arrays, the UMB display of
 * HRex 1.1.0, a CapabilityStatement date that is not a constant).
 */
let ts: TestService;
let token: string;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW, ...CONFLICT_PAIR_ROWS.slice(0, 2)]);
  token = await partnerToken(ts, await registerTestPartner(ts));
}, 60_000);
afterAll(() => ts?.stop());

const SAM_LEE: TestPerson = { given: 'Sam', family: 'Lee', birthDate: '2001-01-01', gender: 'male', card: 'NOT-OURS-1' };
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

describe('status codes', () => {
  it('answers 428 to a review decision sent without If-Match, and 412 to an If-Match that is no ETag of ours', async () => {
    // Two records fit Sam Lee equally well: his request opens a review case.
    expect((await postMemberMatch(ts, token, memberMatchRequest(SAM_LEE, NEW_PAYER_ORG))).status).toBe(422);
    const reviewer = await devIdpToken(ts.service.deps.db, ts.config, 'rae', ['reviewer']);
    const claim = await fetch(`${ts.url}/review/cases/claim`, { method: 'POST', headers: { authorization: `Bearer ${reviewer}` } });
    expect(claim.status).toBe(200);
    const { id } = (await claim.json()) as { id: string };
    const decide = (ifMatch?: string) =>
      fetch(`${ts.url}/review/cases/${id}/decision`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reviewer}`, 'content-type': 'application/json', ...(ifMatch ? { 'if-match': ifMatch } : {}) },
        body: JSON.stringify({ decision: 'no-match', reason: 'test' }),
      });
    const missing = await decide();
    expect(missing.status).toBe(428);
    expect(reason(await missing.json())).toBe('if-match-required');
    const garbage = await decide('"not-a-version"');
    expect(garbage.status).toBe(412);
    expect(reason(await garbage.json())).toBe('if-match-unknown');
  });

  it('answers 405 with Allow to a method a path does not take, before authentication', async () => {
    for (const [method, path, allow] of [
      ['GET', '/fhir/Patient/$member-match', 'POST'],
      ['PUT', '/fhir/Patient/$member-match', 'POST'],
      ['GET', '/fhir/Group/$bulk-member-match', 'POST'],
      ['POST', '/fhir/metadata', 'GET'],
      ['DELETE', '/fhir/Patient', 'GET'],
      ['POST', '/fhir/bulk-member-match-status/x', 'GET, DELETE'],
      ['GET', '/review/cases/claim', 'POST'],
      ['GET', '/review/cases/00000000-0000-0000-0000-000000000000/decision', 'POST'],
      ['DELETE', '/review/cases', 'GET'],
      ['GET', '/admin/links/00000000-0000-0000-0000-000000000000/revoke', 'POST'],
      ['POST', '/admin/consent-registry/55678', 'PUT, DELETE'],
      ['GET', '/rosters', 'POST'],
      ['PUT', '/rosters/00000000-0000-0000-0000-000000000000', 'GET, DELETE'],
    ] as const) {
      const res = await fetch(`${ts.url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(res.headers.get('content-type')).toMatch(/application\/fhir\+json/);
      expect(reason(await res.json())).toBe('method-not-allowed');
    }
  });

  it('still reads a Patient whose id is not an operation name', async () => {
    expect((await getJson(ts, '/fhir/Patient/00000000-0000-0000-0000-000000000000', token)).status).toBe(404);
  });
});

describe('authentication challenges (RFC 6750 §3.1)', () => {
  it('sends no error code when no token was sent', async () => {
    const res = await fetch(`${ts.url}/fhir/Patient?identifier=55678`);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer/);
    expect(challenge).not.toContain('error=');
  });

  it('sends error="invalid_token" when the token sent does not verify', async () => {
    const res = await fetch(`${ts.url}/fhir/Patient?identifier=55678`, { headers: { authorization: 'Bearer not.a.token' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('discovery', () => {
  it('lists each scope once in scopes_supported', async () => {
    const { body } = await getJson(ts, '/.well-known/smart-configuration');
    expect(body.scopes_supported.length).toBeGreaterThan(0);
    expect(new Set(body.scopes_supported).size).toBe(body.scopes_supported.length);
    expect(body.scopes_supported).toContain('system/Group.$bulk-member-match');
  });

  it('dates the CapabilityStatement with the build, not a constant', async () => {
    const { body } = await getJson(ts, '/fhir/metadata');
    expect(body.date).toBe(releaseDate());
    expect(body.software.releaseDate).toBe(body.date);
    expect(releaseDate({ SOURCE_DATE_EPOCH: '1700000000' })).toBe('2023-11-14');
  });
});

describe('FHIR JSON', () => {
  it("keeps the search's query in the Bundle's self link", async () => {
    const { status, body } = await getJson(ts, '/fhir/Patient?identifier=nobody-here&_count=5', token);
    expect(status).toBe(200);
    expect(body.link).toEqual([{ relation: 'self', url: `${ts.config.fhirBaseUrl}/Patient?identifier=nobody-here&_count=5` }]);
  });

  it('sends an empty searchset without an empty entry array', async () => {
    const { body } = await getJson(ts, '/fhir/Patient?identifier=nobody-here', token);
    expect(body.total).toBe(0);
    expect(body).not.toHaveProperty('entry');
    expect(JSON.stringify(body)).not.toContain('[]');
  });

  it('removes empty arrays, and objects they leave empty, at any depth', () => {
    expect(withoutEmptyArrays({ a: [], b: { c: [] }, d: [{ e: [] }, 1], f: 'x', g: 0, h: false })).toEqual({ d: [1], f: 'x', g: 0, h: false });
  });

  it("gives the UMB coding HRex 1.1.0's display", async () => {
    const matched = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(matched.status).toBe(200);
    const identifier = matched.body.parameter.find((p: any) => p.name === 'MemberIdentifier').valueIdentifier;
    expect(identifier.type.coding).toContainEqual({
      system: 'http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp',
      code: 'UMB',
      display: 'Unique Product-independent Payer Person Identifier',
    });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import {
  getJson,
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
} from './support/service.js';

let ts: TestService;
let token: string;

beforeAll(async () => {
  ts = await startTestService({ MAX_BODY_BYTES: '65536' });
  token = await partnerToken(ts, await registerTestPartner(ts));
});
afterAll(async () => {
  await ts?.stop();
});

const example = () => hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
const issue = (body: any) => body?.issue?.[0];

function withoutPart(name: string) {
  const request = example();
  request.parameter = request.parameter!.filter((p) => p.name !== name);
  return request;
}

describe('malformed requests get an OperationOutcome, never a stack trace', () => {
  it('400 for malformed JSON', async () => {
    const res = await postMemberMatch(ts, token, '{"resourceType": "Parameters", ');
    expect(res.status).toBe(400);
    expect(issue(res.body)).toMatchObject({ severity: 'error', code: 'invalid' });
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'member-match', outcome: 'failure', http_status: 400, reason_code: 'malformed-json' });
  });

  it('415 for a wrong media type', async () => {
    const res = await postMemberMatch(ts, token, JSON.stringify(example()), { 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    expect(issue(res.body).code).toBe('not-supported');
  });

  it('413 for an oversized body', async () => {
    const request = example() as any;
    request.parameter[0].resource.text = { status: 'generated', div: 'x'.repeat(70_000) };
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(413);
    expect(issue(res.body).code).toBe('too-long');
  });

  it('400 when MemberPatient is missing', async () => {
    const res = await postMemberMatch(ts, token, withoutPart('MemberPatient'));
    expect(res.status).toBe(400);
    expect(issue(res.body)).toMatchObject({ code: 'structure', details: { coding: [{ code: 'member-patient-missing' }] } });
  });

  it('400 naming the element when a reference is not local', async () => {
    const request = example() as any;
    request.parameter[1].resource.beneficiary.reference = 'https://elsewhere.example/fhir/Patient/1';
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(400);
    expect(issue(res.body).expression).toEqual(['Parameters.parameter[1].resource.beneficiary.reference']);
    expect(issue(res.body).details.coding[0].code).toBe('reference-not-local');
  });

  it('400 when a local reference does not resolve to MemberPatient', async () => {
    const request = example() as any;
    request.parameter[3].resource.patient.reference = 'Patient/2';
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(400);
    expect(issue(res.body).expression).toEqual(['Parameters.parameter[3].resource.patient.reference']);
  });

  it('400 when the birth date is missing, naming the element, without echoing data', async () => {
    const request = example() as any;
    request.parameter[0].resource.birthDate = '25/12/1974';
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(400);
    expect(issue(res.body).expression).toEqual(['Parameters.parameter[0].resource.birthDate']);
    expect(JSON.stringify(res.body)).not.toContain('1974');
  });

  it('400 when CoverageToMatch carries neither identifier nor subscriberId', async () => {
    const request = example() as any;
    delete request.parameter[1].resource.identifier;
    delete request.parameter[0].resource.identifier;
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(400);
    expect(issue(res.body).details.coding[0].code).toBe('coverage-identifier-missing');
  });

  it('400 for a resource that is not Parameters, and for an unknown parameter', async () => {
    expect((await postMemberMatch(ts, token, { resourceType: 'Patient' })).status).toBe(400);
    const request = example() as any;
    request.parameter.push({ name: 'Surprise', valueString: 'x' });
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(400);
    expect(issue(res.body).details.coding[0].code).toBe('parameter-unknown');
  });

  it('404 OperationOutcome for unknown FHIR routes', async () => {
    const res = await getJson(ts, '/fhir/Observation', token);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('serves an R4 CapabilityStatement advertising SMART and $member-match', async () => {
    const res = await getJson(ts, '/fhir/metadata');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
    const rest = res.body.rest[0];
    expect(rest.security.extension[0].extension[0]).toEqual({ url: 'token', valueUri: ts.config.tokenUrl });
    const patient = rest.resource.find((r: any) => r.type === 'Patient');
    expect(patient.searchParam).toContainEqual({ name: 'identifier', type: 'token' });
    expect(patient.operation).toContainEqual({ name: 'member-match', definition: 'http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match' });
  });

  it('reports readiness of the database and Redis', async () => {
    const res = await getJson(ts, '/readyz');
    expect(res).toMatchObject({ status: 200, body: { database: true, redis: true } });
  });
});

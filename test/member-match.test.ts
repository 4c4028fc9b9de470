import type { Coverage, Parameters, Patient } from 'fhir/r4.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest, hrexOriginalRequest } from '../src/cli/hrex-example.js';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import {
  getJson,
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

const ROWS = [
  '55678,SUB55678,self,Patricia,Ann,Person,,1974-12-25,female,100 Example Way,Springfield,IL,62701,,,DH10001235,CB135,B37FC,2011-05-23,2012-05-23',
  // A family on one contract: everyone shares subscriber id G100 and coverage id CVG100; the children are twins.
  'G100-01,G100,self,Carlos,,Garcia,,1980-03-02,male,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'G100-02,G100,spouse,Maria,,Garcia,,1982-07-19,female,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'G100-03,G100,child,Olivia,,Garcia,,2015-06-14,female,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'G100-04,G100,child,Oliver,,Garcia,,2015-06-14,male,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  // A duplicated enrolment: two member records for one person under one subscriber.
  'L200-01,L200,self,Sam,,Lee,,2001-01-01,,9 Oak Ave,Reno,NV,89501,,,CVL200,GRP9,PLN1,2021-01-01,',
  'L200-09,L200,self,Sam,,Lee,,2001-01-01,,9 Oak Ave,Reno,NV,89501,,,CVL200B,GRP9,PLN1,2022-01-01,',
];

let ts: TestService;
let partner: TestPartner;
let token: string;

beforeAll(async () => {
  ts = await startTestService();
  await importRows(ts, ROWS);
  partner = await registerTestPartner(ts);
  token = await partnerToken(ts, partner);
});
afterAll(async () => {
  await ts?.stop();
});

function part<T>(request: Parameters, name: string): T {
  return request.parameter!.find((p) => p.name === name)!.resource as T;
}

/** The HL7 example, consent moved to today, with the member and card swapped for another person. */
function requestFor(patient: Partial<Patient>, coverage: Partial<Coverage>): Parameters {
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
  Object.assign(part<Patient>(request, 'MemberPatient'), { identifier: undefined }, patient);
  const toMatch = part<Coverage>(request, 'CoverageToMatch');
  delete toMatch.identifier;
  Object.assign(toMatch, coverage);
  return request;
}

function reason(body: any): string | undefined {
  return body?.issue?.[0]?.details?.coding?.[0]?.code;
}

describe('POST /fhir/Patient/$member-match', () => {
  it('matches the HL7 example (consent moved to today) with both identifier codings and MemberId', async () => {
    const res = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    const identifier = res.body.parameter.find((p: any) => p.name === 'MemberIdentifier').valueIdentifier;
    expect(identifier.value).toBe('55678');
    expect(identifier.system).toBe(ts.config.memberIdentifierSystem);
    expect(identifier.type.coding.map((c: any) => c.code).sort()).toEqual(['MB', 'UMB']);
    const memberId = res.body.parameter.find((p: any) => p.name === 'MemberId').valueReference.reference;
    expect(memberId).toMatch(new RegExp(`^${ts.config.fhirBaseUrl}/Patient/[0-9a-f-]{36}$`));

    const links = await ts.service.deps.db.selectFrom('member_links').selectAll().execute();
    expect(links).toHaveLength(1);
    expect(links[0]!.link_coverage_key).toBe('http://example.org/new-payer/identifiers/coverage|234567');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'member-match', outcome: 'success', reason_code: 'matched', consent_decision: 'permit', client_id: partner.clientId });
    expect(event!.member_ref).toBe(memberId.split('/').pop());
    expect(event!.details).toMatchObject({ linkId: links[0]!.id, decision: 'matched', modelVersion: expect.any(String) });
  });

  it('then finds the member by identifier and by id, for that partner only', async () => {
    const search = await getJson(ts, `/fhir/Patient?identifier=${encodeURIComponent(`${ts.config.memberIdentifierSystem}|55678`)}`, token);
    expect(search.status).toBe(200);
    expect(search.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    const patient = search.body.entry[0].resource;
    expect(patient).toMatchObject({ resourceType: 'Patient', birthDate: '1974-12-25' });
    expect(patient.address).toBeUndefined();
    const read = await getJson(ts, `/fhir/Patient/${patient.id}`, token);
    expect(read.status).toBe(200);

    const stranger = await registerTestPartner(ts, { organization: OTHER_PAYER_ORG });
    const strangerToken = await partnerToken(ts, stranger);
    const none = await getJson(ts, `/fhir/Patient?identifier=55678`, strangerToken);
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 0 });
    expect(none.body).not.toHaveProperty('entry'); // FHIR JSON has no empty arrays
    const notFound = await getJson(ts, `/fhir/Patient/${patient.id}`, strangerToken);
    expect(notFound.status).toBe(404);
    expect(notFound.body.resourceType).toBe('OperationOutcome');
    // A member who does not exist looks exactly like one the partner may not see.
    const missing = await getJson(ts, `/fhir/Patient?identifier=99999999`, strangerToken);
    expect(missing.body.total).toBe(0);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'patient-search', outcome: 'success', member_ref: null });
  });

  it('refuses the unmodified HL7 example: its consent expired in January 2022', async () => {
    const res = await postMemberMatch(ts, token, hrexOriginalRequest());
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('consent-expired');
    expect(JSON.stringify(res.body)).not.toMatch(/55678|Patricia|1974/);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ outcome: 'failure', http_status: 422, reason_code: 'consent-expired', consent_decision: 'deny:consent-expired' });
  });

  it('refuses a consent naming another recipient', async () => {
    const res = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: OTHER_PAYER_ORG, policy: 'sensitive' }));
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('consent-recipient-mismatch');
    expect(res.body.parameter).toBeUndefined();
  });

  it('refuses #regular when this payer cannot segment sensitive data', async () => {
    const res = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'regular' }));
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('consent-policy-cannot-be-honoured');
  });

  it('refuses a request without consent', async () => {
    const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG });
    request.parameter = request.parameter!.filter((p) => p.name !== 'Consent');
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('consent-required');
  });

  it('tells twins on one family contract apart', async () => {
    const olivia = await postMemberMatch(
      ts,
      token,
      requestFor({ name: [{ family: 'Garcia', given: ['Olivia'] }], birthDate: '2015-06-14', gender: 'female' }, { subscriberId: 'G100' }),
    );
    expect(olivia.status).toBe(200);
    expect(olivia.body.parameter[0].valueIdentifier.value).toBe('G100-03');
    const oliver = await postMemberMatch(
      ts,
      token,
      requestFor({ name: [{ family: 'Garcia', given: ['Oliver'] }], birthDate: '2015-06-14', gender: 'male' }, { identifier: [{ value: 'CVG100' }] }),
    );
    expect(oliver.status).toBe(200);
    expect(oliver.body.parameter[0].valueIdentifier.value).toBe('G100-04');
  });

  it('never hands a family member the subscriber: the card matches, the person does not', async () => {
    const res = await postMemberMatch(
      ts,
      token,
      requestFor({ name: [{ family: 'Garcia', given: ['Olivia'] }], birthDate: '1980-03-02', gender: 'female' }, { subscriberId: 'G100' }),
    );
    expect(res.status).toBe(422);
    // The card finds the family; no one in it is this person. A reviewer may look, nobody is matched.
    expect(['no-match', 'manual-review-required']).toContain(reason(res.body));
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ member_ref: null });
  });

  it('refuses to choose between two records that both fit', async () => {
    const res = await postMemberMatch(
      ts,
      token,
      requestFor({ name: [{ family: 'Lee', given: ['Sam'] }], birthDate: '2001-01-01', gender: 'male' }, { subscriberId: 'L200' }),
    );
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('manual-review-required');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ reason_code: 'manual-review-required', member_ref: null });
    expect(event!.details).toMatchObject({ decision: 'review', decisionReason: 'conflict', candidatesConsidered: 2, modelVersion: expect.any(String) });
    // The explanation names fields and levels only.
    const candidates = (event!.details as { candidates: { explanation: { field: string; level: string }[] }[] }).candidates;
    expect(candidates).toHaveLength(2);
    expect(candidates[0]!.explanation.find((e) => e.field === 'birthDate')).toMatchObject({ level: 'exact' });
    expect(JSON.stringify(event)).not.toMatch(/Sam|SAM|2001-01-01|Lee\b|LEE/);
  });

  it('answers 422 for an unknown member', async () => {
    const res = await postMemberMatch(
      ts,
      token,
      requestFor({ name: [{ family: 'Nobody', given: ['Ann'] }], birthDate: '1990-01-01', gender: 'female' }, { subscriberId: 'ZZZ999' }),
    );
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('no-match');
  });

  it('persists nothing when the audit write fails, and answers 503', async () => {
    // The owner's connection: the service's own (runtime) role may not touch the audit table's triggers.
    const db = ts.database.db;
    const linksBefore = await db.selectFrom('member_links').select(db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    await sql`CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$`.execute(db);
    await sql`CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail_audit()`.execute(db);
    try {
      const res = await postMemberMatch(
        ts,
        token,
        requestFor({ name: [{ family: 'Garcia', given: ['Maria'] }], birthDate: '1982-07-19', gender: 'female' }, { subscriberId: 'G100' }),
      );
      expect(res.status).toBe(503);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(res.body)).not.toContain('G100');
    } finally {
      await sql`DROP TRIGGER fail_audit ON audit_events`.execute(db);
      await sql`DROP FUNCTION fail_audit()`.execute(db);
    }
    const linksAfter = await db.selectFrom('member_links').select(db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(linksAfter.n).toBe(linksBefore.n);
    expect(await db.selectFrom('consents').selectAll().where('member_uuid', 'in', db.selectFrom('members').select('id').where('member_id', '=', 'G100-02')).execute()).toEqual([]);
  });

  it('answers the same request sent concurrently with one link and one stored consent, never a 500', async () => {
    const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
    (request.parameter!.find((p) => p.name === 'Consent')!.resource as { id?: string }).id = 'concurrent-consent';
    const responses = await Promise.all(Array.from({ length: 8 }, () => postMemberMatch(ts, token, request)));
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    const consents = await ts.service.deps.db
      .selectFrom('consents')
      .select('id')
      .where(sql<boolean>`resource->>'id' = 'concurrent-consent'`)
      .execute();
    expect(consents).toHaveLength(1);
  });

  it('leaves an audit chain that verifies', async () => {
    expect(await verifyAuditChain(ts.service.deps.db)).toMatchObject({ ok: true });
  });
});

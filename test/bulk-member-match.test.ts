import { readFileSync } from 'node:fs';
import type { Group, Parameters, ParametersParameter, Patient } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import { purgeExpiredJobs } from '../src/batch/jobs.js';
import { recordOptOut } from '../src/consent/opt-out-registry.js';
import { findMemberSummaryByMemberId } from '../src/members/member-index.js';
import {
  eventually,
  getJson,
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  OTHER_PAYER_ORG,
  PUBLIC_BASE_URL,
  partnerToken,
  registerTestPartner,
  startTestService,
  startTestWorkers,
  type TestService,
} from './support/service.js';

const BULK_SCOPE = 'system/Group.$bulk-member-match system/Patient.rs';
const example = JSON.parse(readFileSync(new URL('../fixtures/pdex/Parameters-payer-multi-member-match-in.json', import.meta.url), 'utf8')) as Parameters;

const day = 86_400_000;
const isoDate = (offsetDays: number) => new Date(Date.now() + offsetDays * day).toISOString().slice(0, 10);

/** The PDex example's MemberBundle, with its consent period moved to today (the published one has ended). */
function exampleBundle(changes: { gender?: string; given?: string; family?: string; birthDate?: string; memberId?: string; consentEnds?: string } = {}): ParametersParameter {
  const bundle = structuredClone(example.parameter![0]!);
  for (const part of bundle.part!) {
    const resource = part.resource as any;
    if (part.name === 'Consent') resource.provision.period = { start: isoDate(-1), end: changes.consentEnds ?? isoDate(365) };
    if (part.name === 'MemberPatient') {
      if (changes.given) resource.name[0].given = [changes.given];
      if (changes.family) resource.name[0].family = changes.family;
      if (changes.birthDate) resource.birthDate = changes.birthDate;
      if (changes.memberId) resource.identifier[0].value = changes.memberId;
      if (changes.gender) resource.gender = changes.gender;
      // Someone else: not at Patricia's address or phone.
      if (changes.family) {
        delete resource.address;
        delete resource.telecom;
      }
    }
    if (part.name === 'CoverageToMatch' && changes.memberId) {
      resource.identifier[0].value = changes.memberId;
      resource.subscriberId = changes.memberId;
    }
  }
  return bundle;
}

/** Where the test server listens (status URLs name the public base URL). */
let currentUrl = '';

const bulkRequest = (...bundles: ParametersParameter[]): Parameters => ({ resourceType: 'Parameters', parameter: bundles });

async function kickOff(ts: TestService, token: string, body: unknown, headers: Record<string, string> = {}, query = '') {
  const response = await fetch(`${ts.url}/fhir/Group/$bulk-member-match${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', prefer: 'respond-async', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, location: response.headers.get('content-location'), body: text ? JSON.parse(text) : undefined };
}

async function poll(url: string, token: string): Promise<{ status: number; body: any; progress: string | null }> {
  const response = await fetch(url.replace(PUBLIC_BASE_URL, currentUrl), { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, progress: response.headers.get('x-progress') };
}

const completed = (url: string, token: string) =>
  eventually(async () => {
    const answer = await poll(url, token);
    if (answer.status === 202) {
      expect(answer.progress).toMatch(/^\d+% \(\d+ of \d+ members\)$/);
      return undefined;
    }
    return answer;
  });

function group(parameters: Parameters, name: string): Group | undefined {
  return parameters.parameter?.find((p) => p.name === name)?.resource as Group | undefined;
}

describe('PDex Group/$bulk-member-match', () => {
  let ts: TestService;
  let workers: { stop(): Promise<void> };
  let token: string;
  let otherToken: string;
  let patriciaUuid: string;

  beforeAll(async () => {
    ts = await startTestService({ CAN_SEGMENT_SENSITIVE_DATA: 'true', BULK_MAX_MEMBERS: '4', BATCH_RETRY_AFTER_SECONDS: '1', BATCH_CHUNK_SIZE: '2' });
    currentUrl = ts.url;
    workers = await startTestWorkers(ts);
    await importRows(ts, [
      HL7_EXAMPLE_MEMBER_ROW,
      '10001,G100,self,Carlos,Miguel,Garcia,,1980-03-02,male,5 Sample St,Austin,TX,73301,555-0101,,CVG100,GRP9,PLN1,2020-01-01,',
      '10012,S303,self,Michael,,Smith,,1958-05-04,male,3 Maple Ct,Dover,DE,19901,555-0110,,CVS303,GRP7,HDHP3K,2016-01-01,',
    ]);
    const db = ts.service.deps.db;
    patriciaUuid = (await findMemberSummaryByMemberId(db, '55678'))!.id;
    await recordOptOut(db, (await findMemberSummaryByMemberId(db, '10012'))!.id, 'opted-out', 'test');
    const scopes = ['system/Group.$bulk-member-match', 'system/Patient.rs', 'system/Patient.$member-match'];
    token = await partnerToken(ts, await registerTestPartner(ts, { scopes }), BULK_SCOPE);
    otherToken = await partnerToken(ts, await registerTestPartner(ts, { scopes, organization: OTHER_PAYER_ORG }), BULK_SCOPE);
  }, 60_000);

  afterAll(async () => {
    await workers?.stop();
    await ts?.stop();
  });

  it('answers the PDex example (consent moved to today) with the three Groups, and links the matched member', async () => {
    const kick = await kickOff(
      ts,
      token,
      bulkRequest(
        exampleBundle(),
        exampleBundle({ given: 'Zebulon', family: 'Nobody', birthDate: '1990-01-01', memberId: 'ZZ999' }),
        exampleBundle({ given: 'Michael', family: 'Smith', gender: 'male', birthDate: '1958-05-04', memberId: 'CVS303' }),
        exampleBundle({ given: 'Carlos', family: 'Garcia', gender: 'male', birthDate: '1980-03-02', memberId: 'CVG100', consentEnds: isoDate(-1) }),
      ),
    );
    expect(kick.status).toBe(202);
    expect(kick.location).toMatch(/\/fhir\/bulk-member-match-status\/[0-9a-f-]{36}$/);

    const done = await completed(kick.location!, token);
    expect(done.status).toBe(200);
    const result = done.body as Parameters;
    expect(result.resourceType).toBe('Parameters');

    const matched = group(result, 'MatchedMembers')!;
    expect(matched.code?.coding?.[0]).toMatchObject({ system: 'http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMultiMemberMatchResultCS', code: 'match' });
    expect(matched.member?.map((m) => m.entity.reference)).toEqual([`Patient/${patriciaUuid}`]);
    const contained = matched.contained?.[0] as Patient;
    expect(matched.member?.[0]?.entity.extension?.[0]?.valueReference?.reference).toBe(`#${contained.id}`);
    expect(contained.name?.[0]?.family).toBe('Person');

    const nonMatched = group(result, 'NonMatchedMembers')!;
    expect(nonMatched.code?.coding?.[0]?.code).toBe('nomatch');
    expect((nonMatched.contained as Patient[]).map((p) => p.name?.[0]?.family)).toEqual(['Nobody']);

    const constrained = group(result, 'ConsentConstrainedMembers')!;
    expect(constrained.code?.coding?.[0]?.code).toBe('consentconstraint');
    // Michael Smith opted out with us; Carlos Garcia's consent has ended.
    expect((constrained.contained as Patient[]).map((p) => p.name?.[0]?.family).sort()).toEqual(['Garcia', 'Smith']);
    expect(constrained.member?.every((m) => m.entity.reference?.startsWith('#'))).toBe(true);

    // The match made a link like a single match: the partner may now read its member.
    expect((await getJson(ts, `/fhir/Patient/${patriciaUuid}`, token)).status).toBe(200);

    // One audit event per member, in the chain.
    const db = ts.service.deps.db;
    const events = await db.selectFrom('audit_events').select(['reason_code', 'consent_decision', 'details']).where('operation', '=', 'bulk-member-match').where('http_status', 'is', null).execute();
    expect(events.map((e) => e.reason_code).sort()).toEqual(['consent-expired', 'matched', 'member-opted-out', 'no-match']);
    expect(JSON.stringify(events)).not.toMatch(/Patricia|Zebulon|Garcia|1974-12-25/);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });

    // The same request again is the same job.
    const again = await kickOff(ts, token, bulkRequest(
      exampleBundle(),
      exampleBundle({ given: 'Zebulon', family: 'Nobody', birthDate: '1990-01-01', memberId: 'ZZ999' }),
      exampleBundle({ given: 'Michael', family: 'Smith', gender: 'male', birthDate: '1958-05-04', memberId: 'CVS303' }),
      exampleBundle({ given: 'Carlos', family: 'Garcia', gender: 'male', birthDate: '1980-03-02', memberId: 'CVG100', consentEnds: isoDate(-1) }),
    ));
    expect(again.location).toBe(kick.location);
  });

  it('answers STU 2.2 clients with a manifest of Group NDJSON files', async () => {
    const kick = await kickOff(ts, token, bulkRequest(exampleBundle()), {}, '?_outputFormat=application/fhir%2Bndjson');
    expect(kick.status).toBe(202);
    const manifest = (await completed(kick.location!, token)).body;
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.output.map((o: { type: string }) => o.type)).toEqual(['Group', 'Group', 'Group']);
    const file = manifest.output.find((o: { url: string }) => o.url.endsWith('/MatchedMembers.ndjson')).url as string;
    const response = await fetch(file.replace(PUBLIC_BASE_URL, ts.url), { headers: { authorization: `Bearer ${token}` } });
    expect(response.headers.get('content-type')).toMatch(/application\/fhir\+ndjson/);
    const lines = (await response.text()).trim().split('\n').map((l) => JSON.parse(l) as Group);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.member?.[0]?.entity.reference).toBe(`Patient/${patriciaUuid}`);
  });

  it('lets only the partner that started a job see it, or cancel it', async () => {
    const kick = await kickOff(ts, token, bulkRequest(exampleBundle({ given: 'Patty' })));
    const statusPath = new URL(kick.location!).pathname;
    expect((await getJson(ts, statusPath, otherToken)).status).toBe(404);
    const cancel = await fetch(`${ts.url}${statusPath}`, { method: 'DELETE', headers: { authorization: `Bearer ${otherToken}` } });
    expect(cancel.status).toBe(404);
    expect((await getJson(ts, '/fhir/bulk-member-match-status/00000000-0000-0000-0000-000000000000', token)).status).toBe(404);
  });

  it('cancels a job: DELETE answers 202 and the status URL is gone', async () => {
    const kick = await kickOff(ts, token, bulkRequest(exampleBundle({ given: 'Pat' })));
    const statusPath = new URL(kick.location!).pathname;
    const cancel = await fetch(`${ts.url}${statusPath}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(cancel.status).toBe(202);
    expect((await getJson(ts, statusPath, token)).status).toBe(404);
  });

  it('forgets a finished job, with its rows and results, once its retention has passed', async () => {
    const kick = await kickOff(ts, token, bulkRequest(exampleBundle({ given: 'Trish' })));
    await completed(kick.location!, token);
    const id = kick.location!.split('/').pop()!;
    const db = ts.service.deps.db;
    expect(await purgeExpiredJobs(db, 72)).toBe(0);
    await db.updateTable('batch_jobs').set({ finished_at: new Date(Date.now() - 73 * 3_600_000) }).where('id', '=', id).execute();
    expect(await purgeExpiredJobs(db, 72)).toBe(1);
    expect(await db.selectFrom('batch_rows').select('seq').where('job_id', '=', id).execute()).toHaveLength(0);
    expect((await getJson(ts, new URL(kick.location!).pathname, token)).status).toBe(404);
  });

  it('refuses bad kick-offs at once, each with an OperationOutcome', async () => {
    const noPrefer = await kickOff(ts, token, bulkRequest(exampleBundle()), { prefer: '' });
    expect(noPrefer.status).toBe(400);
    expect(noPrefer.body.issue[0].details.coding[0].code).toBe('respond-async-required');

    const broken = exampleBundle();
    (broken.part!.find((p) => p.name === 'MemberPatient')!.resource as any).birthDate = 'yesterday';
    const malformed = await kickOff(ts, token, bulkRequest(exampleBundle(), broken));
    expect(malformed.status).toBe(400);
    expect(malformed.body.issue[0].expression[0]).toMatch(/^Parameters\.parameter\[1\]\.part\[\d+\]\.resource\.birthDate$/);

    const noConsent = exampleBundle();
    noConsent.part = noConsent.part!.filter((p) => p.name !== 'Consent');
    expect((await kickOff(ts, token, bulkRequest(noConsent))).status).toBe(400);
    expect((await kickOff(ts, token, { resourceType: 'Parameters', parameter: [] })).status).toBe(400);
    expect((await kickOff(ts, token, '{"resourceType": ')).status).toBe(400);

    const tooMany = await kickOff(ts, token, bulkRequest(...Array.from({ length: 5 }, () => exampleBundle())));
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.resourceType).toBe('OperationOutcome');

    expect((await kickOff(ts, token, bulkRequest(exampleBundle()), { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await kickOff(ts, token, bulkRequest(exampleBundle()), {}, '?_outputFormat=text/csv')).status).toBe(400);

    const singleScope = await partnerToken(ts, await registerTestPartner(ts), 'system/Patient.$member-match');
    const forbidden = await kickOff(ts, singleScope, bulkRequest(exampleBundle()));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.issue[0].details.coding[0].code).toBe('scope-missing');
  });
});

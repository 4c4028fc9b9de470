import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkMatch, bulkMatchedReferences, memberMatchRequest, reconcileRoster, rosterOf, workloadToken, type TestPerson } from './support/doors.js';
import {
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
 * One pipeline behind every door: the same people asked about through `$member-match`, through
 * `$bulk-member-match` and through roster reconciliation come to the same decision — the same member, or not
 * matched (no match, or with a reviewer) — whichever door they came through.
 */
let ts: TestService;
let workers: { stop(): Promise<void> };
let partner: string;
let workload: string;

const ADDRESS = { addressLine: '9 Elm St', city: 'Dover', state: 'DE', postalCode: '19901' };
const TWINS = { addressLine: '12 Oak St', city: 'Springfield', state: 'IL', postalCode: '62701' };

beforeAll(async () => {
  ts = await startTestService({ BATCH_CHUNK_SIZE: '4', BATCH_RETRY_AFTER_SECONDS: '1' });
  workers = await startTestWorkers(ts);
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
    // Twins: same family, birth date, address and phone; told apart by the given name alone.
    '70001,TW1,self,Amy,,Twin,,1990-06-15,female,12 Oak St,Springfield,IL,62701,555-0200,,TWC1,,,,',
    '70002,TW1,child,Ann,,Twin,,1990-06-15,female,12 Oak St,Springfield,IL,62701,555-0200,,TWC2,,,,',
    // Father and son of one name at one address: told apart by suffix and birth date.
    '70003,JS1,self,John,,Smith,Sr,1950-02-02,male,9 Elm St,Dover,DE,19901,555-0300,,JSC1,,,,',
    '70004,JS1,child,John,,Smith,Jr,1980-02-02,male,9 Elm St,Dover,DE,19901,555-0300,,JSC2,,,,',
    '70005,RJ1,self,Robert,,Johnson,,1975-08-20,male,44 Pine Rd,Austin,TX,73301,555-0400,,RJC1,,,,',
    '70006,MG1,self,Maria,,Garcia,,1982-11-30,female,7 Bay Ave,Miami,FL,33101,555-0500,,MGC1,,,,',
  ]);
  const scopes = ['system/Patient.$member-match', 'system/Group.$bulk-member-match', 'system/Patient.rs'];
  partner = await partnerToken(ts, await registerTestPartner(ts, { scopes }), scopes.join(' '));
  workload = await workloadToken(ts, 'system:serviceaccount:batch:parity');
}, 60_000);
afterAll(async () => {
  await workers?.stop();
  await ts?.stop();
});

/** The people, each with the member we expect when the answer is certain (undefined: any answer, as long as every door agrees). */
const PEOPLE: { label: string; person: TestPerson; expected?: string | null }[] = [
  {
    label: 'the HL7 example member, with her card',
    person: { given: 'Patricia', family: 'Person', birthDate: '1974-12-25', gender: 'female', addressLine: '100 Example Way', city: 'Springfield', state: 'IL', postalCode: '62701', card: 'DH10001235' },
    expected: '55678',
  },
  {
    label: 'the HL7 example member, demographics only',
    person: { given: 'Patricia', family: 'Person', birthDate: '1974-12-25', gender: 'female', addressLine: '100 Example Way', city: 'Springfield', state: 'IL', postalCode: '62701', phone: '555-0100', card: 'NP-1' },
  },
  { label: 'a twin', person: { given: 'Amy', family: 'Twin', birthDate: '1990-06-15', gender: 'female', ...TWINS, phone: '555-0200', card: 'NP-2' } },
  { label: 'the other twin, initial only', person: { given: 'A', family: 'Twin', birthDate: '1990-06-15', gender: 'female', ...TWINS, card: 'NP-3' }, expected: null },
  { label: 'the son, Jr', person: { given: 'John', family: 'Smith', suffix: 'Jr', birthDate: '1980-02-02', gender: 'male', ...ADDRESS, card: 'NP-4' } },
  { label: 'the father, no suffix', person: { given: 'John', family: 'Smith', birthDate: '1950-02-02', gender: 'male', ...ADDRESS, card: 'NP-5' } },
  { label: 'typos in both names', person: { given: 'Robret', family: 'Jonson', birthDate: '1975-08-20', gender: 'male', addressLine: '44 Pine Rd', city: 'Austin', state: 'TX', postalCode: '73301', phone: '555-0400', card: 'NP-6' } },
  { label: 'a birth date one digit off', person: { given: 'Maria', family: 'Garcia', birthDate: '1982-11-03', gender: 'female', addressLine: '7 Bay Ave', city: 'Miami', state: 'FL', postalCode: '33101', card: 'NP-7' } },
  { label: 'a namesake elsewhere', person: { given: 'Maria', family: 'Garcia', birthDate: '1961-04-09', gender: 'female', addressLine: '1 Far Rd', city: 'Boise', state: 'ID', postalCode: '83701', card: 'NP-8' }, expected: null },
  { label: 'not our member', person: { given: 'Zebulon', family: 'Nobody', birthDate: '1990-01-01', gender: 'male', card: 'NP-9' }, expected: null },
];

describe('one pipeline behind every door', () => {
  it('gives the same decision for the same person through $member-match, $bulk-member-match and roster reconciliation', async () => {
    const db = ts.service.deps.db;
    const memberIdOf = new Map((await db.selectFrom('members').select(['id', 'member_id']).execute()).map((m) => [m.id, m.member_id]));
    const requests = PEOPLE.map(({ person }) => memberMatchRequest(person, NEW_PAYER_ORG));

    // The single door: 200 names the member; anything else is "not matched".
    const single: (string | null)[] = [];
    for (const request of requests) {
      const res = await postMemberMatch(ts, partner, request);
      expect([200, 422]).toContain(res.status);
      single.push(res.status === 200 ? (res.body.parameter.find((p: any) => p.name === 'MemberIdentifier').valueIdentifier.value as string) : null);
    }

    // The bulk door: MatchedMembers names our Patient; NonMatched (no match, or with a reviewer) is "not matched".
    const bulk = await bulkMatch(ts, partner, requests);
    expect(bulk.status).toBe(202);
    const matchedRefs = bulkMatchedReferences(bulk.result!);
    const viaBulk = PEOPLE.map((_, i) => {
      const reference = matchedRefs.get(String(i + 1));
      return reference ? memberIdOf.get(reference.replace('Patient/', ''))! : null;
    });

    // The roster door: matched rows name the member id; review and no-match rows are "not matched".
    const lines = await reconcileRoster(ts, workload, rosterOf(PEOPLE.map((p) => p.person)));
    expect(lines).toHaveLength(PEOPLE.length);
    const viaRoster = lines.map((l) => (l.outcome === 'matched' ? (l.memberId as string) : null));

    const table = PEOPLE.map((p, i) => ({ who: p.label, single: single[i], bulk: viaBulk[i], roster: viaRoster[i] }));
    for (const row of table) expect({ who: row.who, bulk: row.bulk, roster: row.roster }).toEqual({ who: row.who, bulk: row.single, roster: row.single });
    PEOPLE.forEach((p, i) => {
      if (p.expected !== undefined) expect({ who: p.label, got: single[i] }).toEqual({ who: p.label, got: p.expected });
    });
    // Not a vacuous agreement: some people matched and some did not.
    expect(single.filter(Boolean).length).toBeGreaterThanOrEqual(2);
    expect(single.filter((s) => s === null).length).toBeGreaterThanOrEqual(3);
  });
});

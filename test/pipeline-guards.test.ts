import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken, bulkMatch, bulkMatchedReferences, memberMatchRequest, reconcileRoster, rosterOf, workloadToken, type TestPerson } from './support/doors.js';
import {
  CONFLICT_PAIR_ROWS,
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  latestAuditEvents,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  startTestWorkers,
  type TestService,
} from './support/service.js';

/**
 * The guards live inside the match pipeline, so they hold at every door and for every actor class, keyed by
 * the tenant on whose authority the caller acts: the lockout and the brute-force counters (a bulk request's
 * members each count), and the review-case budget. Every trip writes one `security-alert` naming the door and
 * the actor chain.
 */
let ts: TestService;
let workers: { stop(): Promise<void> };
let orgCounter = 0;

const SCOPES = ['system/Patient.$member-match', 'system/Group.$bulk-member-match', 'system/Patient.rs'];
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

beforeAll(async () => {
  ts = await startTestService({
    BRUTE_FORCE_UNMATCHED: '4',
    BRUTE_FORCE_BIRTH_DATE_VARIANTS: '5',
    REVIEW_CASES_PER_HOUR: '2',
    REVIEW_CASES_PER_HOUR_INTERNAL: '1',
    MATCH_LOCKOUT_SECONDS: '600',
    BATCH_RETRY_AFTER_SECONDS: '1',
  });
  workers = await startTestWorkers(ts);
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
    ...CONFLICT_PAIR_ROWS,
  ]);
}, 60_000);
afterAll(async () => {
  await workers?.stop();
  await ts?.stop();
});

/** A partner of its own organisation (review cases are partitioned by organisation), with its token. */
async function newPartner() {
  const organization = { system: 'http://hl7.org/fhir/sid/us-npi', value: String(9_100_000_000 + ++orgCounter) };
  const partner = await registerTestPartner(ts, { organization, scopes: SCOPES });
  return { ...partner, token: await partnerToken(ts, partner, SCOPES.join(' ')) };
}

const PATRICIA: TestPerson = { given: 'Patricia', family: 'Person', birthDate: '1974-12-25', gender: 'female', card: 'DH10001235' };
const nobody = (i: number): TestPerson => ({ given: `Zeb${'abcdefghij'[i]}`, family: 'Nobody', birthDate: '1990-01-01', gender: 'male', card: `NOPE-${i}` });
const UNCERTAIN: TestPerson[] = [
  { given: 'Sam', family: 'Lee', birthDate: '2001-01-01', gender: 'male', card: 'X-L' },
  { given: 'Kim', family: 'Park', birthDate: '1990-05-05', gender: 'female', card: 'X-P' },
  { given: 'Ray', family: 'Diaz', birthDate: '1985-03-03', gender: 'male', card: 'X-D' },
  { given: 'Lou', family: 'Chen', birthDate: '1970-07-07', gender: 'male', card: 'X-C' },
];

async function alerts(clientId: string) {
  return ts.service.deps.db
    .selectFrom('audit_events')
    .select(['reason_code', 'details', 'client_id'])
    .where('operation', '=', 'security-alert')
    .where('details', '@>', JSON.stringify({ tenant: `partner:${clientId}` }) as never)
    .orderBy('seq')
    .execute();
}

/** Five misses through the single door trip BRUTE_FORCE_UNMATCHED=4 (the budget tests stay at four uncertain requests or fewer). */
async function lockOut(partner: Awaited<ReturnType<typeof newPartner>>) {
  for (let i = 0; i < 5; i++) expect((await postMemberMatch(ts, partner.token, memberMatchRequest(nobody(i), partner.organization))).status).toBe(422);
  expect(reason((await postMemberMatch(ts, partner.token, memberMatchRequest(PATRICIA, partner.organization))).body)).toBe('matching-locked');
}

describe('guards in the pipeline', () => {
  it('refuses a locked-out partner\'s bulk request whole, storing nothing', async () => {
    const partner = await newPartner();
    await lockOut(partner);
    const bulk = await bulkMatch(ts, partner.token, [memberMatchRequest(PATRICIA, partner.organization)]);
    expect(bulk.status).toBe(429);
    expect(reason(bulk.body)).toBe('matching-locked');
    const jobs = await ts.service.deps.db.selectFrom('batch_jobs').select('id').where('owner_client_id', '=', partner.clientId).execute();
    expect(jobs).toHaveLength(0);
    const [alert] = await alerts(partner.clientId);
    expect(alert).toMatchObject({ reason_code: 'brute-force:unmatched-requests', details: { door: 'member-match', actorChain: [`partner:${partner.clientId}`] } });
  });

  it('reveals nothing to one person asked about with many birth dates in one bulk request, and locks the partner', async () => {
    const partner = await newPartner();
    const dates = Array.from({ length: 12 }, (_, i) => `1974-12-${String(14 + i).padStart(2, '0')}`);
    expect(dates).toContain('1974-12-25');
    const probes = dates.map((birthDate) => memberMatchRequest({ ...PATRICIA, birthDate, card: 'GUESS' }, partner.organization));
    const bulk = await bulkMatch(ts, partner.token, probes);
    expect(bulk.status).toBe(202);
    expect(bulkMatchedReferences(bulk.result!).size).toBe(0);
    const matched = bulk.result!.parameter!.find((p) => p.name === 'MatchedMembers')!.resource as { quantity?: number };
    expect(matched.quantity).toBe(0);
    const found = await alerts(partner.clientId);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ reason_code: 'brute-force:birth-date-variants', details: { door: 'bulk-member-match', actorChain: [`partner:${partner.clientId}`] } });
    expect(JSON.stringify(found)).not.toMatch(/Patricia|1974/);
    // The partner is now locked at the single door too.
    expect(reason((await postMemberMatch(ts, partner.token, memberMatchRequest(PATRICIA, partner.organization))).body)).toBe('matching-locked');
  });

  it('counts every member of a bulk request against the counters the single door uses', async () => {
    const partner = await newPartner();
    const bulk = await bulkMatch(ts, partner.token, [0, 1, 2, 3, 4].map((i) => memberMatchRequest(nobody(i), partner.organization)));
    expect(bulk.status).toBe(202);
    const [alert] = await alerts(partner.clientId);
    expect(alert).toMatchObject({ reason_code: 'brute-force:unmatched-requests', details: { door: 'bulk-member-match' } });
    const single = await postMemberMatch(ts, partner.token, memberMatchRequest(PATRICIA, partner.organization));
    expect(single.status).toBe(429);
    expect(reason(single.body)).toBe('matching-locked');
  });

  it('refuses an agent acting for a locked-out partner, and counts an agent\'s misses against its partner', async () => {
    const locked = await newPartner();
    await lockOut(locked);
    const agentForLocked = await agentToken(ts, locked.token);
    const refused = await postMemberMatch(ts, agentForLocked, memberMatchRequest(PATRICIA, locked.organization));
    expect(refused.status).toBe(429);
    expect(reason(refused.body)).toBe('matching-locked');

    const partner = await newPartner();
    const agent = await agentToken(ts, partner.token);
    for (let i = 0; i < 5; i++) expect((await postMemberMatch(ts, agent, memberMatchRequest(nobody(i), partner.organization))).status).toBe(422);
    const [alert] = await alerts(partner.clientId);
    expect(alert!.reason_code).toBe('brute-force:unmatched-requests');
    expect((alert!.details as { actorChain: string[] }).actorChain).toEqual([`partner:${partner.clientId}`, expect.stringMatching(/^agent:/)]);
    expect(reason((await postMemberMatch(ts, partner.token, memberMatchRequest(PATRICIA, partner.organization))).body)).toBe('matching-locked');
  });

  it('caps the review cases a partner opens per hour through the single door, answering the rest as not matched, with one alert', async () => {
    const partner = await newPartner();
    const answers = [];
    for (const person of [...UNCERTAIN.slice(0, 3)]) answers.push(await postMemberMatch(ts, partner.token, memberMatchRequest(person, partner.organization)));
    expect(answers.map((a) => reason(a.body))).toEqual(['manual-review-required', 'manual-review-required', 'no-match']);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'member-match', http_status: 422, reason_code: 'review-budget-exhausted' });
    // A fourth is refused too, without a second alert.
    expect(reason((await postMemberMatch(ts, partner.token, memberMatchRequest(UNCERTAIN[3]!, partner.organization))).body)).toBe('no-match');
    const cases = await ts.service.deps.db.selectFrom('review_cases').select('id').where('partner_client_id', '=', partner.clientId).execute();
    expect(cases).toHaveLength(2);
    const found = await alerts(partner.clientId);
    expect(found.map((a) => a.reason_code)).toEqual(['review-budget-exhausted']);
    expect(found[0]!.details).toMatchObject({ door: 'member-match', budgetPerHour: 2 });
  });

  it('caps review cases through the bulk door, and shares the budget with the partner\'s agent', async () => {
    const partner = await newPartner();
    const agent = await agentToken(ts, partner.token);
    expect(reason((await postMemberMatch(ts, agent, memberMatchRequest(UNCERTAIN[0]!, partner.organization))).body)).toBe('manual-review-required');
    const bulk = await bulkMatch(ts, partner.token, UNCERTAIN.slice(1).map((p) => memberMatchRequest(p, partner.organization)));
    expect(bulk.status).toBe(202);
    const cases = await ts.service.deps.db.selectFrom('review_cases').select('id').where('partner_client_id', '=', partner.clientId).execute();
    expect(cases).toHaveLength(2);
    const found = await alerts(partner.clientId);
    expect(found.map((a) => [a.reason_code, (a.details as { door: string }).door])).toEqual([['review-budget-exhausted', 'bulk-member-match']]);
  });

  it('caps the review cases our own roster jobs open, by their own budget', async () => {
    const token = await workloadToken(ts, 'system:serviceaccount:batch:guards');
    const lines = await reconcileRoster(ts, token, rosterOf(UNCERTAIN.slice(0, 2)));
    expect(lines.map((l) => l.outcome)).toEqual(['review', 'no-match']);
    expect(lines[1]).toMatchObject({ reason: 'review-budget-exhausted' });
    const alert = await ts.service.deps.db
      .selectFrom('audit_events')
      .select(['reason_code', 'details'])
      .where('operation', '=', 'security-alert')
      .where('details', '@>', JSON.stringify({ door: 'roster-reconcile' }) as never)
      .execute();
    expect(alert).toHaveLength(1);
    expect(alert[0]).toMatchObject({ reason_code: 'review-budget-exhausted', details: { budgetPerHour: 1 } });
  });
});

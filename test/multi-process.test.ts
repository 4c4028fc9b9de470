import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Coverage, Group, Parameters, Patient } from 'fhir/r4.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import { configureAuditTrail, type AuditTrailSettings } from '../src/audit/settings.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { loadConfig, type Config } from '../src/config.js';
import { devIdpToken } from '../src/identity/humans.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { bulkMatch, memberMatchRequest, reconcileRoster, workloadToken, type TestPerson } from './support/doors.js';
import { processAsTestService, spawnServiceProcess, type ServiceProcess } from './support/processes.js';
import {
  eventually,
  importRows,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  PUBLIC_BASE_URL,
  registerTestPartner,
  type TestService,
} from './support/service.js';

/**
 * Scale-out on one Postgres and one Redis (issue 13): two API processes (`src/main.ts`, RUN_WORKERS=false) and
 * two worker processes (`src/worker.ts`), real processes sharing a database, a Redis key prefix and an audit
 * key. Single matches, a bulk match, a roster job and four reviewers run against both APIs at once; nothing
 * may be lost or done twice, no case may be claimed twice, and the audit chain they all append to must verify.
 */
const DEMO_ROSTER = new URL('../fixtures/demo-roster.csv', import.meta.url);
const demoLines = readFileSync(DEMO_ROSTER, 'utf8').trim().split('\n');
const demoHeader = demoLines[0]!;
const demoRows = demoLines.slice(1);
const ROSTER_COPIES = 5;

/** The demo members (the plainly written rows) as the new payer describes them, their card being our member id. */
const demoPeople: TestPerson[] = demoRows.filter((row) => row.split(',').length === 20 && /^(male|female)$/.test(row.split(',')[8]!)).map((row) => {
  const c = row.split(',');
  return {
    card: c[0]!,
    given: c[3]!,
    family: c[5]!,
    ...(c[6] ? { suffix: c[6] } : {}),
    birthDate: c[7]!,
    gender: c[8] as 'male' | 'female',
    ...(c[9] ? { addressLine: c[9], city: c[10]!, state: c[11]!, postalCode: c[12]! } : {}),
    ...(c[13] ? { phone: c[13] } : {}),
  };
});

/** Pairs of records that fit a request equally well: each request about them becomes one review case. */
const CONFLICT_PAIRS = [
  ['Sam', 'Lee', '2001-01-01', 'male'],
  ['Kim', 'Park', '1990-05-05', 'female'],
  ['Ray', 'Diaz', '1985-03-03', 'male'],
  ['Lou', 'Chen', '1970-07-07', 'male'],
  ['Ada', 'Moss', '1962-09-09', 'female'],
  ['Eli', 'Roth', '1999-11-11', 'male'],
] as const;
const conflictRows = CONFLICT_PAIRS.flatMap(([given, family, birthDate, gender], i) => [
  `${31001 + 2 * i},MP${i},self,${given},,${family},,${birthDate},${gender},,,,,,,MPC${2 * i},,,,`,
  `${31002 + 2 * i},MP${i},child,${given},,${family},,${birthDate},${gender},,,,,,,MPC${2 * i + 1},,,,`,
]);

function conflictRequest(index: number): Parameters {
  const [given, family, birthDate, gender] = CONFLICT_PAIRS[index]!;
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
  const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as Patient;
  Object.assign(patient, { name: [{ family, given: [given] }], birthDate, gender, identifier: undefined, address: undefined, telecom: undefined });
  const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
  delete coverage.identifier;
  coverage.subscriberId = `MP${index}`;
  return request;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
const reasonOf = (body: any): string | undefined => body?.issue?.[0]?.details?.coding?.[0]?.code;

let database: TestDatabase;
let config: Config;
let auditSettings: AuditTrailSettings;
const processes: ServiceProcess[] = [];
let apis: TestService[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const env = {
    DATABASE_URL: database.url,
    PORT: '0',
    METRICS_PORT: 'off',
    PUBLIC_BASE_URL,
    REDIS_KEY_PREFIX: `mm-test-mp-${randomBytes(6).toString('hex')}:`,
    AUDIT_KEY: randomBytes(32).toString('base64url'),
    DEV_MODE: 'true',
    RUN_WORKERS: 'false',
    // Small chunks, so that each job is split into many chunks for the two workers to share.
    BATCH_CHUNK_SIZE: '10',
    BATCH_CONCURRENCY: '2',
    BATCH_ROW_PARALLELISM: '2',
  };
  config = loadConfig(env);
  // The test checks the chain with the same key the processes write it with.
  auditSettings = configureAuditTrail(config.audit);

  // The first API process prepares the database (runtime role, keys); the others then start together.
  const first = await spawnServiceProcess('api', env);
  processes.push(first);
  const others = await Promise.allSettled([spawnServiceProcess('api', env), spawnServiceProcess('worker', env), spawnServiceProcess('worker', env)]);
  for (const started of others) if (started.status === 'fulfilled') processes.push(started.value);
  const failed = others.find((started) => started.status === 'rejected');
  if (failed) throw failed.reason;
  apis = processes.filter((p) => p.kind === 'api').map((api) => processAsTestService(api, config, database));
  expect(apis).toHaveLength(2);
  expect(apis[0]!.url).not.toBe(apis[1]!.url);

  await importRows(apis[0]!, [...demoRows, ...conflictRows]);
}, 120_000);

afterAll(async () => {
  const codes = await Promise.all(processes.map((p) => p.stop()));
  await database?.drop();
  // Every process shut down cleanly on SIGTERM.
  expect(codes.every((code) => code === 0)).toBe(true);
}, 60_000);

describe('two API and two worker processes on one Postgres and one Redis', () => {
  it('lose nothing, duplicate nothing, claim no case twice, and keep the audit chain intact', async () => {
    const [a, b] = apis as [TestService, TestService];
    const partner = await registerTestPartner(a, {
      scopes: ['system/Patient.$member-match', 'system/Group.$bulk-member-match', 'system/Patient.rs'],
    });
    const matchToken = await partnerToken(a, partner);
    const bulkToken = await partnerToken(b, partner, 'system/Group.$bulk-member-match system/Patient.rs');
    const rosterToken = await workloadToken(b, 'system:serviceaccount:batch:reconciler');

    // Batch work first, so that it runs on the workers while everything else happens.
    const bulkPeople = demoPeople;
    const bulk = bulkMatch(a, bulkToken, bulkPeople.map((person) => memberMatchRequest(person, NEW_PAYER_ORG)));
    const rosterCsv = [demoHeader, ...Array.from({ length: ROSTER_COPIES }, () => demoRows).flat()].join('\n') + '\n';
    const roster = reconcileRoster(b, rosterToken, rosterCsv);

    // Single matches on both APIs: each uncertain request sent to both at once makes one case, not two.
    const conflicts = await Promise.all(
      CONFLICT_PAIRS.map((_, i) => Promise.all([postMemberMatch(a, matchToken, conflictRequest(i)), postMemberMatch(b, matchToken, conflictRequest(i))])),
    );
    const conflictCases = conflicts.map(([fromA, fromB]) => {
      expect([fromA.status, reasonOf(fromA.body)]).toEqual([422, 'manual-review-required']);
      expect([fromB.status, reasonOf(fromB.body)]).toEqual([422, 'manual-review-required']);
      const caseA = String(fromA.body.issue[0].diagnostics).match(UUID)?.[0];
      const caseB = String(fromB.body.issue[0].diagnostics).match(UUID)?.[0];
      expect(caseA).toBeDefined();
      expect(caseB).toBe(caseA);
      return caseA!;
    });
    expect(new Set(conflictCases).size).toBe(CONFLICT_PAIRS.length);
    const clear = await Promise.all(demoPeople.slice(0, 10).map((person, i) => postMemberMatch(i % 2 ? b : a, matchToken, memberMatchRequest(person, NEW_PAYER_ORG))));
    expect(clear.map((r) => r.status)).toEqual(clear.map(() => 200));

    // Four reviewers, two on each API, claim concurrently while the batch work runs; each decides the case it
    // claimed through the other API. A reviewer stops once the queue was empty after all the producers ended.
    let producersDone = false;
    const producers = Promise.all([bulk, roster]).finally(() => {
      producersDone = true;
    });
    const claims: { reviewer: string; id: string; etag: string }[] = [];
    const decided: string[] = [];
    const reviewer = async (index: number) => {
      const name = `reviewer-${index}`;
      const claimVia = index % 2 ? b : a;
      const decideVia = index % 2 ? a : b;
      const bearer = await devIdpToken(database.db, config, name, ['reviewer']);
      await eventually(async () => {
        const doneBeforeClaim = producersDone;
        const claimed = await reviewApi(claimVia, bearer).claim();
        if (claimed.status === 204) return doneBeforeClaim ? true : undefined;
        expect(claimed.status).toBe(200);
        expect(claimed.body.leaseOwner).toBe(name);
        claims.push({ reviewer: name, id: claimed.body.id, etag: claimed.etag! });
        const decision = await reviewApi(decideVia, bearer).decide(claimed.body.id, claimed.etag!, 'multi-process test');
        expect(decision.status).toBe(200);
        expect(['decided', 'awaiting-confirmation']).toContain(decision.body.status);
        decided.push(claimed.body.id);
        return undefined;
      }, 90_000, 50);
    };
    const [[bulkResult, rosterLines]] = await Promise.all([producers, ...[0, 1, 2, 3].map(reviewer)]);

    // Bulk: every member sent is answered exactly once.
    expect(bulkResult.status).toBe(202);
    const groups = (bulkResult.result!.parameter ?? []).map((p) => p.resource as Group);
    const answered = groups.reduce((sum, group) => sum + (group.member?.length ?? 0), 0);
    expect(answered).toBe(bulkPeople.length);
    // Roster: one result per row, lines 2.. in order, none twice.
    const rosterRows = demoRows.length * ROSTER_COPIES;
    expect(rosterLines.map((line) => line.line)).toEqual(Array.from({ length: rosterRows }, (_, i) => i + 2));
    // And in the database: each job's results are its rows, each row once.
    const jobs = await database.db.selectFrom('batch_jobs').select(['id', 'kind', 'state', 'total_rows', 'rows_done']).execute();
    expect(jobs.map((job) => [job.state, job.total_rows, job.rows_done]).sort()).toEqual(
      [['completed', bulkPeople.length, bulkPeople.length], ['completed', rosterRows, rosterRows]].sort(),
    );
    for (const job of jobs) {
      const chunks = await database.db.selectFrom('batch_chunks').select(['done_at']).where('job_id', '=', job.id).execute();
      expect(chunks).toHaveLength(Math.ceil(job.total_rows / 10));
      expect(chunks.every((chunk) => chunk.done_at !== null)).toBe(true);
      const counts = await sql<{ results: string; lines: string; seqs: string }>`
        SELECT count(*) AS results, count(DISTINCT line) AS lines, count(DISTINCT seq) AS seqs FROM batch_results WHERE job_id = ${job.id}`.execute(database.db);
      expect(counts.rows[0]).toEqual({ results: String(job.total_rows), lines: String(job.total_rows), seqs: String(job.total_rows) });
    }

    // Review: each case claimed by exactly one reviewer, every case claimed, each decided once.
    const claimedIds = claims.map((c) => c.id);
    expect(new Set(claimedIds).size).toBe(claimedIds.length);
    const cases = await database.db.selectFrom('review_cases').select(['id', 'decision', 'decided_by']).execute();
    expect([...claimedIds].sort()).toEqual(cases.map((c) => c.id).sort());
    expect(claimedIds).toEqual(expect.arrayContaining(conflictCases));
    expect([...decided].sort()).toEqual([...claimedIds].sort());
    for (const c of cases) {
      expect(c.decision).toBe('no-match');
      expect(c.decided_by).toBe(claims.find((claim) => claim.id === c.id)!.reviewer);
    }
    // A second decision on a decided case, through either API, is refused.
    for (const [i, claim] of claims.entries()) {
      const bearer = await devIdpToken(database.db, config, claim.reviewer, ['reviewer']);
      const again = await reviewApi(i % 2 ? a : b, bearer).decide(claim.id, claim.etag, 'twice');
      expect(again.status).toBeGreaterThanOrEqual(400);
    }
    const decisions = await sql<{ case_id: string; n: string }>`
      SELECT details->>'reviewCase' AS case_id, count(*) AS n FROM audit_events
      WHERE operation = 'review-decide' AND outcome = 'success' GROUP BY 1`.execute(database.db);
    expect(decisions.rows.map((row) => [row.case_id, row.n]).sort()).toEqual(cases.map((c) => [c.id, '1']).sort());

    // The audit chain all four processes appended to verifies under the shared key.
    const chain = await verifyAuditChain(database.db, { settings: auditSettings });
    expect(chain).toMatchObject({ ok: true });
    const events = await database.db.selectFrom('audit_events').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
    expect(chain.events).toBe(Number(events.n));
  }, 150_000);
});

/** A reviewer's calls to the review API of one process: claim the next case, or decide one with its ETag. */
function reviewApi(ts: TestService, bearer: string) {
  const send = async (path: string, body?: unknown, ifMatch?: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${bearer}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (ifMatch) headers['if-match'] = ifMatch;
    const response = await fetch(new URL(`/review${path}`, ts.url), { method: 'POST', headers, body: body === undefined ? null : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, etag: response.headers.get('etag'), body: text ? (JSON.parse(text) as any) : undefined };
  };
  return {
    claim: () => send('/cases/claim'),
    decide: (id: string, etag: string, reason: string) => send(`/cases/${id}/decision`, { decision: 'no-match', reason }, etag),
  };
}

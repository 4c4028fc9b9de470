import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Coverage, Parameters } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { importRoster } from '../src/members/roster-import.js';
import { createReviewQueue, reconcileReviewTimers, SLA_JOB } from '../src/review/outbox-relay.js';
import { openCase } from '../src/review/review-cases.js';
import {
  eventually,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  startTestWorkers,
  type TestService,
} from './support/service.js';
import { workloadToken } from './support/doors.js';

/**
 * Redis restarted empty (here: every key under this test's prefix deleted; never FLUSHALL, other tests share
 * the server). Postgres is the source of truth: the workers' reconciler re-dispatches the running roster job,
 * re-arms the SLA timers of open review cases, and the lockout holds because Postgres keeps it.
 */
const DEMO_ROSTER = new URL('../fixtures/demo-roster.csv', import.meta.url);
const demoRows = readFileSync(DEMO_ROSTER, 'utf8').trim().split('\n');

let ts: TestService;
let workers: { stop(): Promise<void> } | undefined;
const redis = new Redis('redis://127.0.0.1:6379'); // no key prefix: it deletes this test's keys by pattern

beforeAll(async () => {
  ts = await startTestService({
    RUN_WORKERS: 'false',
    QUEUE_RECONCILE_SECONDS: '0.5',
    BATCH_CHUNK_SIZE: '10',
    BATCH_CONCURRENCY: '2',
    BRUTE_FORCE_CARD_VARIANTS: '3',
    MATCH_LOCKOUT_SECONDS: '600',
  });
  await importRoster(ts.service.deps.db, DEMO_ROSTER.pathname, { memberIdentifierSystem: ts.config.memberIdentifierSystem });
}, 60_000);

afterAll(async () => {
  await workers?.stop();
  if (ts) await deleteOwnKeys();
  redis.disconnect();
  await ts?.stop();
});

/** "Redis restarted empty", for this test's prefix only: every key under it goes. Answers how many. */
async function deleteOwnKeys(): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${ts.config.redisKeyPrefix}*`, 'COUNT', 1_000);
    if (keys.length > 0) deleted += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}

async function ensureWorkers(): Promise<void> {
  workers ??= await startTestWorkers(ts);
}

describe('Redis restarted empty', () => {
  it('completes a running roster job (23 of 24 chunks done) with each row decided exactly once', async () => {
    const db = ts.service.deps.db;
    const members = demoRows.slice(1);
    const body = [demoRows[0], ...Array.from({ length: 6 }, () => members).flat()].join('\n') + '\n';
    const rows = members.length * 6;
    const response = await fetch(`${ts.url}/rosters`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await workloadToken(ts, 'system:serviceaccount:batch:reconciler')}`, 'content-type': 'text/csv' },
      body,
    });
    expect(response.status).toBe(202);
    const id = ((await response.json()) as { id: string }).id;
    const job = await db.selectFrom('batch_jobs').select(['chunk_count', 'dispatched_at']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(job.chunk_count).toBe(Math.ceil(rows / 10));
    expect(job.dispatched_at).toBeInstanceOf(Date); // the API handed it to the queue

    // Chunk 5 is held mid-way: the test locks its row, so the worker that takes it waits (concurrency 2: the
    // other slot works through the rest). Deterministically, every chunk but one is done while one is in flight.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const lockHeld = new Promise<void>((resolve) => (held = resolve));
    const holder = db.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM batch_chunks WHERE job_id = ${id} AND chunk = 5 FOR UPDATE`.execute(trx);
      held();
      await released;
    });
    await lockHeld;
    try {
      await ensureWorkers();
      await eventually(async () => {
        const j = await db.selectFrom('batch_jobs').select('chunks_done').where('id', '=', id).executeTakeFirstOrThrow();
        return j.chunks_done === job.chunk_count - 1 ? true : undefined;
      }, 150_000);
      expect(await deleteOwnKeys()).toBeGreaterThan(0); // the finalize parent and chunk 5's entry are gone
    } finally {
      release();
      await holder;
    }

    const done = await eventually(async () => {
      const j = await db.selectFrom('batch_jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      return j.state === 'completed' || j.state === 'failed' ? j : undefined;
    }, 150_000);
    expect(done).toMatchObject({ state: 'completed', rows_done: rows, chunks_done: job.chunk_count });

    const results = await sql<{ n: number; seqs: number }>`
      SELECT count(*)::int AS n, count(DISTINCT seq)::int AS seqs FROM batch_results WHERE job_id = ${id}`.execute(db);
    expect(results.rows[0]).toEqual({ n: rows, seqs: rows });
    const events = await sql<{ n: number; distinct_rows: number }>`
      SELECT count(*)::int AS n, count(DISTINCT details->>'row')::int AS distinct_rows FROM audit_events
      WHERE operation = 'roster-reconcile' AND details->>'batchJob' = ${id}`.execute(db);
    expect(events.rows[0]).toEqual({ n: rows, distinct_rows: rows });
    // Bounded waits, generous for a loaded CI machine: the test waits on states, never on the clock.
  }, 360_000);

  it('re-arms the SLA timer of every open review case, and escalates an overdue case once', async () => {
    await ensureWorkers();
    const db = ts.service.deps.db;
    const queue = createReviewQueue(ts.config.redisUrl, ts.config.redisKeyPrefix);
    try {
      const client = await registerPartnerClient(db, { name: 'sla', organization: NEW_PAYER_ORG, jwks: { keys: [] }, scopes: [] });
      const open = async (key: string, slaDueAt: Date) =>
        (
          await db.transaction().execute((trx) =>
            openCase(trx, {
              reason: 'uncertain',
              partnerClientId: client.clientId,
              partnerOrganization: client.organization,
              requestKey: key,
              offered: { given: 'A' },
              linkRequest: {},
              candidates: [],
              modelVersion: 'test',
              bestProbability: 0.5,
              slaDueAt,
              highRisk: false,
            }),
          )
        ).id;
      const tomorrow = new Date(Date.now() + 86_400_000);
      const openIds = [await open('sla-1', tomorrow), await open('sla-2', tomorrow), await open('sla-3', tomorrow)];
      const decided = await open('sla-4', tomorrow);
      const overdue = await open('sla-5', new Date(Date.now() - 60_000));
      const state = (caseId: string) => queue.getJobState(`sla-${caseId}`);

      // The relay publishes every case; the overdue one's timer fires at once and escalates it.
      await eventually(async () => ((await Promise.all([...openIds, decided].map(state))).every((s) => s === 'delayed') ? true : undefined));
      await eventually(async () => {
        const c = await sql<{ sla_escalated_at: Date | null }>`SELECT sla_escalated_at FROM review_cases WHERE id = ${overdue}`.execute(db);
        return c.rows[0]?.sla_escalated_at ? true : undefined;
      });
      await db.updateTable('review_cases').set({ status: 'decided' }).where('id', '=', decided).execute();

      // Redis loses everything. (The reconciler runs every 0.5 s here, so a timer may be back before the next
      // line could look: that it was gone shows in the decided and overdue cases' timers, which stay gone.)
      expect(await deleteOwnKeys()).toBeGreaterThan(0);

      // The reconciler puts back every open case's timer, at its deadline; not the decided case's, nor the one
      // whose timer already fired.
      const back = await eventually(async () => {
        const jobs = await queue.getJobs(['delayed']);
        const armed = jobs.filter((j) => j.name === SLA_JOB).map((j) => j.id);
        return openIds.every((c) => armed.includes(`sla-${c}`)) ? jobs : undefined;
      });
      for (const j of back.filter((j) => j.name === SLA_JOB)) expect(j.timestamp + j.delay).toBeGreaterThan(Date.now() + 86_000_000);
      expect(await state(decided)).toBe('unknown');
      expect(await state(overdue)).toBe('unknown');

      // Reconcilers racing (one per worker process) add nothing more: the job ids derive from the case.
      expect(await Promise.all([reconcileReviewTimers(db, queue), reconcileReviewTimers(db, queue)])).toEqual([0, 0]);
      const slaJobs = (await queue.getJobs(['delayed', 'wait', 'active'])).filter((j) => j.name === SLA_JOB);
      expect(slaJobs.map((j) => j.id).sort()).toEqual(openIds.map((c) => `sla-${c}`).sort());

      // The overdue case was escalated exactly once, Redis loss or not.
      const escalated = await db.selectFrom('review_cases').select('priority').where('id', '=', overdue).executeTakeFirstOrThrow();
      expect(escalated.priority).toBe(1);
      const events = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM audit_events WHERE operation = 'review-sla' AND details->>'reviewCase' = ${overdue}`.execute(db);
      expect(events.rows[0]!.n).toBe(1);
    } finally {
      await queue.close();
    }
  }, 60_000);

  it('keeps a tripped lockout when Redis loses it, and puts its Redis copy back', async () => {
    await ensureWorkers();
    const partner = await registerTestPartner(ts);
    const token = await partnerToken(ts, partner);
    const withCard = (value: string): Parameters => {
      const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
      const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
      coverage.identifier = [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, value }];
      delete coverage.subscriberId;
      return request;
    };
    const reason = (res: { body: any }) => res.body?.issue?.[0]?.details?.coding?.[0]?.code;
    for (const card of ['L-1', 'L-2', 'L-3', 'L-4']) await postMemberMatch(ts, token, withCard(card));
    const locked = await postMemberMatch(ts, token, withCard('DH10001235'));
    expect([locked.status, reason(locked)]).toEqual([429, 'matching-locked']);

    const tenant = `partner:${partner.clientId}`;
    const stored = await sql<{ reason: string; seconds: number }>`
      SELECT reason, extract(epoch FROM until - now())::int AS seconds FROM tenant_lockouts WHERE tenant = ${tenant}`.execute(ts.service.deps.db);
    expect(stored.rows[0]).toMatchObject({ reason: 'card-variants' });
    expect(stored.rows[0]!.seconds).toBeGreaterThan(500);

    expect(await deleteOwnKeys()).toBeGreaterThan(0);
    const after = await postMemberMatch(ts, token, withCard('DH10001235'));
    expect([after.status, reason(after)]).toEqual([429, 'matching-locked']);
    expect(Number(after.headers.get('retry-after'))).toBeGreaterThan(500);

    // The reconciler restores the Redis copy (what callers without a database handle read), with its time left.
    const ttl = await eventually(async () => {
      const left = await redis.ttl(`${ts.config.redisKeyPrefix}lockout:${tenant}`);
      return left > 0 ? left : undefined;
    });
    expect(ttl).toBeGreaterThan(500);
    expect(ttl).toBeLessThanOrEqual(600);

    // Another tenant is not affected.
    const other = await partnerToken(ts, await registerTestPartner(ts));
    expect((await postMemberMatch(ts, other, withCard('DH10001235'))).status).toBe(200);
  }, 60_000);
});

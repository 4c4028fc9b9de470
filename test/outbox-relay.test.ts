import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASE_JOB, createReviewQueue, relayOnce, SLA_JOB } from '../src/review/outbox-relay.js';
import { escalateIfOpen, startReviewWorker } from '../src/review/sla.js';
import { createLogger } from '../src/logger.js';
import { metrics } from '../src/metrics.js';
import { openCase } from '../src/review/review-cases.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/** Nothing is lost while Redis is down, and nothing is published twice when it returns. */
let t: TestDatabase;
const prefix = `mm-test-${randomBytes(6).toString('hex')}:`;
const queue = createReviewQueue('redis://127.0.0.1:6379', prefix);
const downQueue = createReviewQueue('redis://127.0.0.1:1', prefix); // nothing listens on port 1
downQueue.on('error', () => undefined);

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await Promise.race([downQueue.close().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000))]);
  await t.drop();
});

async function newCase(n: number, dueInMs = 86_400_000): Promise<string> {
  const client = await registerPartnerClient(t.db, { name: `p${n}`, organization: { system: 'urn:test', value: `org-${n}` }, jwks: { keys: [] }, scopes: [] });
  const opened = await t.db.transaction().execute((trx) =>
    openCase(trx, {
      reason: 'uncertain',
      partnerClientId: client.clientId,
      partnerOrganization: client.organization,
      requestKey: `key-${n}`,
      offered: { given: 'A' },
      linkRequest: {},
      candidates: [],
      modelVersion: 'test',
      bestProbability: 0.5,
      slaDueAt: new Date(Date.now() + dueInMs),
      highRisk: false,
    }),
  );
  return opened.id;
}

describe('review outbox relay', () => {
  it('keeps cases in the outbox while Redis is unreachable, then publishes each exactly once', async () => {
    const ids = [await newCase(1), await newCase(2)];
    await expect(relayOnce(t.db, downQueue)).rejects.toThrow();
    const pending = await t.db.selectFrom('review_outbox').select('case_id').where('published_at', 'is', null).execute();
    expect(pending.map((p) => p.case_id).sort()).toEqual([...ids].sort());

    expect(await relayOnce(t.db, queue)).toBe(2);
    expect(await relayOnce(t.db, queue)).toBe(0);
    // A row published again (say the relay died after Redis took the job, before marking it) makes no second job.
    await t.db.updateTable('review_outbox').set({ published_at: null }).execute();
    expect(await relayOnce(t.db, queue)).toBe(2);
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed']);
    expect(jobs.filter((j) => j.name === CASE_JOB).map((j) => j.id).sort()).toEqual([...ids].sort());
    expect(jobs.filter((j) => j.name === SLA_JOB).map((j) => j.id).sort()).toEqual(ids.map((id) => `sla-${id}`).sort());
  });

  it('escalates a case still open at its SLA deadline, with an audit event, and leaves decided ones alone', async () => {
    const overdue = await newCase(3, 1_000);
    expect(await relayOnce(t.db, queue)).toBe(1);
    const worker = startReviewWorker(t.db, 'redis://127.0.0.1:6379', prefix, createLogger('silent'));
    try {
      for (let i = 0; i < 50; i++) {
        const c = await t.db.selectFrom('review_cases').select('priority').where('id', '=', overdue).executeTakeFirstOrThrow();
        if (c.priority > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await worker.close();
    }
    expect((await t.db.selectFrom('review_cases').select('priority').where('id', '=', overdue).executeTakeFirstOrThrow()).priority).toBe(1);
    const events = await t.db.selectFrom('audit_events').selectAll().where('operation', '=', 'review-sla').execute();
    expect(events).toHaveLength(1);
    expect(events[0]!.details).toMatchObject({ reviewCase: overdue, priority: 1 });
    expect(await metrics.getSingleMetricAsString('review_sla_escalations_total')).toMatch(/review_sla_escalations_total [1-9]/);
    expect(await escalateIfOpen(t.db, overdue)).toBe(true); // still open: escalates again when asked
    await t.db.updateTable('review_cases').set({ status: 'decided' }).where('id', '=', overdue).execute();
    expect(await escalateIfOpen(t.db, overdue)).toBe(false);
  });
});

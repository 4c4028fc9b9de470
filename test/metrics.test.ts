import { randomUUID } from 'node:crypto';
import { AggregatorRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuditCheckpointer } from '../src/audit/checkpoints.js';
import { auditTrailSettings } from '../src/audit/settings.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startMetricsServer, type MetricsServer } from '../src/http/metrics-server.js';
import { createLogger } from '../src/logger.js';
import { metrics } from '../src/metrics.js';
import { memberMatchRequest, reconcileRoster, rosterOf, workloadToken, type TestPerson } from './support/doors.js';
import { sampleValue } from './support/prometheus.js';
import {
  CONFLICT_PAIR_ROWS,
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
 * /metrics lives on a listener of its own (METRICS_PORT, bound to HOST), never on the API's port: behind a
 * reverse proxy on the same machine every API request comes from loopback, so the old socket-address check
 * let anyone read it. (src/main.ts starting and stopping it is covered by test/shutdown.test.ts.)
 *
 * The operations series (docs/operations.md) are scraped from that listener after real requests, queue jobs,
 * review cases, a lockout and a roster job against the real Postgres and Redis.
 */
let ts: TestService;
let metricsServer: MetricsServer;

beforeAll(async () => {
  ts = await startTestService({ BRUTE_FORCE_CARD_VARIANTS: '3' });
  metricsServer = await startMetricsServer(0, '127.0.0.1');
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW, ...CONFLICT_PAIR_ROWS]);
});
afterAll(async () => {
  await metricsServer?.close();
  await ts?.stop();
});

const scrape = async () => (await fetch(`${metricsServer.url}/metrics`)).text();
const SAM: TestPerson = { given: 'Sam', family: 'Lee', birthDate: '2001-01-01', gender: 'male', card: 'NOT-OURS-9' };

describe('metrics', () => {
  it('are not served by the API, not even to loopback clients', async () => {
    const response = await fetch(`${ts.url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('member_match_decisions_total');
  });

  it('are served on their own port, counting the API’s decisions by door', async () => {
    const token = await partnerToken(ts, await registerTestPartner(ts));
    expect((await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(200);
    const response = await fetch(`${metricsServer.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.text()).toMatch(/member_match_decisions_total\{door="member-match",outcome="matched"\} [1-9]/);
    expect(metricsServer.server.address()).toMatchObject({ address: '127.0.0.1' });
  });

  it('answer nothing else on that port', async () => {
    expect((await fetch(`${metricsServer.url}/`)).status).toBe(404);
    expect((await fetch(`${metricsServer.url}/fhir/metadata`)).status).toBe(404);
    expect((await fetch(`${metricsServer.url}/metrics/x`)).status).toBe(404);
    const post = await fetch(`${metricsServer.url}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${metricsServer.url}/metrics?x=1`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('are configured by METRICS_PORT: 9464 by default, `off` for none', () => {
    expect(loadConfig({}).metricsPort).toBe(9464);
    expect(loadConfig({ METRICS_PORT: '9100' }).metricsPort).toBe(9100);
    expect(loadConfig({ METRICS_PORT: '0' }).metricsPort).toBe(0);
    expect(loadConfig({ METRICS_PORT: 'off' }).metricsPort).toBeUndefined();
    expect(() => loadConfig({ METRICS_PORT: 'yes' })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(ConfigError);
  });
});

describe('operations metrics', () => {
  it('time HTTP requests by route pattern and status, never by URL', async () => {
    const token = await partnerToken(ts, await registerTestPartner(ts));
    expect((await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(200);
    const someone = randomUUID();
    const read = await fetch(`${ts.url}/fhir/Patient/${someone}`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(404);
    expect((await fetch(`${ts.url}/no-such-page/q-77731?member=55678`)).status).toBe(404);
    expect((await fetch(`${ts.url}/fhir/no-such-endpoint-4411`)).status).toBe(404);
    expect((await fetch(`${ts.url}/healthz`)).status).toBe(200);

    const text = await scrape();
    const count = (labels: Record<string, string>) => sampleValue(text, 'member_match_http_request_duration_seconds_count', labels);
    expect(count({ method: 'POST', route: '/fhir/Patient/$member-match', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(count({ method: 'GET', route: '/fhir/Patient/:id', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: 'unmatched', status: '404' })).toBe(2); // and the API's /metrics above
    expect(count({ method: 'GET', route: '/fhir/*', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: '/healthz', status: '200' })).toBe(1);
    expect(sampleValue(text, 'member_match_http_request_duration_seconds_bucket', { route: '/fhir/Patient/$member-match', status: '200', le: '+Inf' })).toBeGreaterThanOrEqual(2);
    for (const raw of [someone, 'q-77731', '55678', 'no-such-endpoint-4411', 'no-such-page']) expect(text).not.toContain(raw);
  });

  it('count refusals by reason code and status', async () => {
    expect((await postMemberMatch(ts, undefined, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(401);
    const token = await partnerToken(ts, await registerTestPartner(ts));
    const miss = await postMemberMatch(ts, token, memberMatchRequest({ ...SAM, given: 'Nobody', family: 'Known', birthDate: '1950-02-03' }, NEW_PAYER_ORG));
    expect(miss.status).toBe(422);
    const text = await scrape();
    expect(sampleValue(text, 'member_match_refusals_total', { reason: 'token-missing', status: '401' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(text, 'member_match_refusals_total', { reason: 'no-match', status: '422' })).toBe(1);
    expect(sampleValue(text, 'member_match_refusals_total', { reason: 'not-found', status: '404' })).toBeGreaterThanOrEqual(1);
  });

  it('report open and overdue review cases', async () => {
    const token = await partnerToken(ts, await registerTestPartner(ts));
    expect((await postMemberMatch(ts, token, memberMatchRequest(SAM, NEW_PAYER_ORG))).status).toBe(422); // a conflict: to review
    let text = await scrape();
    expect(sampleValue(text, 'member_match_review_cases_open', { status: 'pending' })).toBe(1);
    expect(sampleValue(text, 'member_match_review_cases_open', { status: 'claimed' })).toBe(0);
    expect(sampleValue(text, 'member_match_review_cases_overdue')).toBe(0);
    await ts.service.deps.db.updateTable('review_cases').set({ sla_due_at: new Date(Date.now() - 60_000) }).execute();
    text = await scrape();
    expect(sampleValue(text, 'member_match_review_cases_overdue')).toBe(1);
    expect(sampleValue(text, 'member_match_review_oldest_open_seconds')).toBeGreaterThan(0);
  });

  it('report queue depth and the age of the oldest waiting job per queue', async () => {
    // No workers run yet in this file: a job added now waits.
    await ts.service.deps.reviewQueue!.add('metrics-probe', { caseId: randomUUID() }, { jobId: `probe-${randomUUID()}`, removeOnComplete: true });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const text = await scrape();
    expect(sampleValue(text, 'member_match_queue_jobs', { queue: 'review', state: 'waiting' })).toBe(1);
    expect(sampleValue(text, 'member_match_queue_oldest_waiting_seconds', { queue: 'review' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(text, 'member_match_queue_jobs', { queue: 'batch', state: 'waiting' })).toBe(0);
    expect(sampleValue(text, 'member_match_queue_oldest_waiting_seconds', { queue: 'batch' })).toBe(0);
    expect(sampleValue(text, 'member_match_metrics_collect_errors_total')).toBeUndefined();
  });

  it('count lockouts by reason, and the tenants locked now', async () => {
    const token = await partnerToken(ts, await registerTestPartner(ts));
    for (const card of ['M-1', 'M-2', 'M-3', 'M-4']) await postMemberMatch(ts, token, memberMatchRequest({ ...SAM, given: 'Lockie', card }, NEW_PAYER_ORG));
    const text = await scrape();
    expect(sampleValue(text, 'member_match_lockouts_total', { reason: 'card-variants' })).toBe(1);
    expect(sampleValue(text, 'member_match_tenants_locked')).toBe(1);
    expect(sampleValue(text, 'member_match_refusals_total', { reason: 'matching-locked', status: '429' })).toBeGreaterThanOrEqual(1);
  });

  it('count batch rows by kind and outcome, finished jobs and chunk time; roster rows are not $member-match decisions', async () => {
    const before = sampleValue(await scrape(), 'member_match_decisions_total', { door: 'member-match' });
    const workers = await startTestWorkers(ts);
    try {
      const lines = await reconcileRoster(ts, await workloadToken(ts, 'system:serviceaccount:batch:metrics'), rosterOf([SAM, { ...SAM, given: 'Nobody', family: 'Known' }]));
      expect(lines).toHaveLength(2);
    } finally {
      await workers.stop();
    }
    const text = await scrape();
    expect(sampleValue(text, 'member_match_batch_rows_total', { kind: 'roster-reconcile' })).toBe(2);
    expect(sampleValue(text, 'member_match_batch_jobs_finished_total', { kind: 'roster-reconcile', state: 'completed' })).toBe(1);
    expect(sampleValue(text, 'member_match_batch_chunk_duration_seconds_count', { kind: 'roster-reconcile' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(text, 'member_match_decisions_total', { door: 'roster-reconcile' })).toBe(2);
    expect(sampleValue(text, 'member_match_decisions_total', { door: 'member-match' })).toBe(before);
  });

  it('of shared state are taken by max, not summed, across node:cluster processes', async () => {
    const one = await metrics.getMetricsAsJSON();
    const merged = await AggregatorRegistry.aggregate([one, one]).metrics();
    const single = await metrics.metrics();
    for (const [name, labels] of [
      ['member_match_review_cases_overdue', {}],
      ['member_match_tenants_locked', {}],
      ['member_match_queue_jobs', { queue: 'review', state: 'waiting' }],
    ] as const) {
      expect(sampleValue(merged, name, labels), name).toBe(sampleValue(single, name, labels));
    }
    const counted = sampleValue(single, 'member_match_lockouts_total', { reason: 'card-variants' })!;
    expect(sampleValue(merged, 'member_match_lockouts_total', { reason: 'card-variants' })).toBe(2 * counted); // counters add up
  });

  it('count audit checkpoints that fail', async () => {
    const settings = { ...auditTrailSettings(), checkpointFile: '/dev/null/not-a-directory/checkpoints.jsonl' };
    const checkpointer = startAuditCheckpointer(ts.service.deps.db, createLogger('silent'), settings);
    await checkpointer.stop();
    expect(sampleValue(await scrape(), 'member_match_audit_checkpoint_failures_total')).toBeGreaterThanOrEqual(1);
  });
});

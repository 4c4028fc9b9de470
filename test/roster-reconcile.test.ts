import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { generatePartnerKeyPair, type PartnerKeyPair } from '../src/cli/partner-tools.js';
import { exchangeWorkloadToken, mintWorkloadToken } from '../src/cli/workload-tools.js';
import { registerWorkload } from '../src/identity/workloads.js';
import { importRoster } from '../src/members/roster-import.js';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import { eventually, partnerToken, registerTestPartner, startTestService, type TestService } from './support/service.js';

/**
 * Roster reconciliation through the API, with the batch workers in their own processes (as in production),
 * so that one can be killed with SIGKILL mid-job.
 */
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'member-match';
const DEMO_ROSTER = new URL('../fixtures/demo-roster.csv', import.meta.url);

let ts: TestService;
let issuerKeys: PartnerKeyPair;
let token: string;
let otherWorkloadToken: string;
const workers = new Set<ChildProcess>();

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: ts.database.url,
      REDIS_KEY_PREFIX: ts.config.redisKeyPrefix,
      LOG_LEVEL: 'silent',
      BATCH_CHUNK_SIZE: '10',
      BATCH_CONCURRENCY: '1',
      BATCH_ROW_PARALLELISM: '2',
      BATCH_LOCK_SECONDS: '2',
    },
    stdio: 'ignore',
  });
  workers.add(child);
  child.on('exit', () => workers.delete(child));
  return child;
}

async function stopWorkers(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await Promise.all([...workers].map((child) => new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  })));
}

async function workloadToken(subject: string, scopes = ['roster:reconcile']): Promise<string> {
  await registerWorkload(ts.service.deps.db, { name: subject, issuer: ISSUER, subject, audience: AUDIENCE, jwks: issuerKeys.publicJwks, scopes });
  const platformToken = await mintWorkloadToken({ issuer: ISSUER, subject, audience: AUDIENCE, privateJwk: issuerKeys.privateJwk });
  const exchanged = await exchangeWorkloadToken(`${ts.url}/oauth/token`, platformToken, scopes.join(' '));
  return exchanged.body.access_token as string;
}

async function upload(body: string | Buffer, headers: Record<string, string> = {}, bearer = token) {
  const response = await fetch(`${ts.url}/rosters`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'text/csv', ...headers },
    body,
  });
  return { status: response.status, location: response.headers.get('location'), body: (await response.json()) as any };
}

async function status(id: string, bearer = token) {
  const response = await fetch(`${ts.url}/rosters/${id}`, { headers: { authorization: `Bearer ${bearer}` } });
  return { status: response.status, body: (await response.json()) as any };
}

async function results(id: string): Promise<any[]> {
  const response = await fetch(`${ts.url}/rosters/${id}/results`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.headers.get('content-type')).toMatch(/application\/x-ndjson/);
  return (await response.text()).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

const finished = (id: string, timeoutMs = 60_000) =>
  eventually(async () => {
    const s = await status(id);
    return s.body.state === 'completed' || s.body.state === 'failed' ? s.body : undefined;
  }, timeoutMs);

const demoRows = readFileSync(DEMO_ROSTER, 'utf8').trim().split('\n');
const header = demoRows[0]!;
const members = demoRows.slice(1);

/** A roster of `copies` × the demo members (the partner's view of them), with a broken row at each given line. */
function roster(copies: number, brokenLines: number[] = [], salt = ''): string {
  const lines = [header];
  for (let c = 0; c < copies; c++) for (const row of members) lines.push(row);
  for (const line of brokenLines) lines[line - 1] = lines[line - 1]!.replace(/,\d{4}-\d{2}-\d{2},/, ',31/02/1980,');
  return lines.join('\n') + '\n' + salt;
}

beforeAll(async () => {
  ts = await startTestService({ RUN_WORKERS: 'false' });
  await importRoster(ts.service.deps.db, DEMO_ROSTER.pathname, { memberIdentifierSystem: ts.config.memberIdentifierSystem });
  issuerKeys = await generatePartnerKeyPair('ES384');
  token = await workloadToken('system:serviceaccount:batch:reconciler');
  otherWorkloadToken = await workloadToken('system:serviceaccount:batch:other');
  startWorker();
}, 60_000);

afterAll(async () => {
  await stopWorkers('SIGKILL');
  await ts?.stop();
});

describe('roster reconciliation', () => {
  it('reconciles a CSV roster row by row, reporting bad rows by line while the rest complete', async () => {
    const body = roster(3, [4, 30]);
    const started = await upload(body);
    expect(started.status).toBe(202);
    expect(started.location).toMatch(/\/rosters\/[0-9a-f-]{36}$/);
    const id = started.body.id as string;
    expect(started.body.totalRows).toBe(members.length * 3);

    const done = await finished(id);
    expect(done.state).toBe('completed');
    expect(done.rowsDone).toBe(members.length * 3);
    expect(done.counts.rejected).toBe(2);
    expect(done.counts.matched).toBeGreaterThan(members.length * 3 - 10);

    const lines = await results(id);
    expect(lines.map((l) => l.line)).toEqual(Array.from({ length: members.length * 3 }, (_, i) => i + 2));
    const rejected = lines.filter((l) => l.outcome === 'rejected');
    expect(rejected.map((l) => l.line)).toEqual([4, 30]);
    expect(rejected[0].error).toMatch(/birth_date/);
    expect(rejected[0].error).not.toMatch(/31\/02/); // reasons never quote the row
    const patricia = lines.find((l) => l.line === 2);
    expect(patricia).toMatchObject({ outcome: 'matched', memberId: '55678', band: 'high' });
    // Results and audit events carry member ids and references, never demographics.
    const events = await ts.service.deps.db.selectFrom('audit_events').select(['details']).where('operation', '=', 'roster-reconcile').execute();
    expect(events).toHaveLength(members.length * 3 - 2);
    expect(JSON.stringify(events)).not.toMatch(/Patricia|Person|1974-12-25/);
  });

  it('treats the same upload from the same client as the same job, compressed or not', async () => {
    const body = roster(1, [], '\n');
    const first = await upload(body);
    expect(first.status).toBe(202);
    const again = await upload(body);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const gzipped = await upload(gzipSync(body), { 'content-encoding': 'gzip' });
    expect(gzipped.body.id).toBe(first.body.id);
    // Another workload uploading the same roster has a job of its own, and cannot see the first one.
    const other = await upload(body, {}, otherWorkloadToken);
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
    expect((await status(first.body.id, otherWorkloadToken)).status).toBe(404);
    expect((await fetch(`${ts.url}/rosters/${first.body.id}/results`, { headers: { authorization: `Bearer ${otherWorkloadToken}` } })).status).toBe(404);
    await finished(first.body.id);
  });

  it('reconciles NDJSON Patients', async () => {
    const patient = {
      resourceType: 'Patient',
      identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, value: 'NEWPAYER-1' }],
      name: [{ family: 'Person', given: ['Patricia', 'Ann'] }],
      birthDate: '1974-12-25',
      gender: 'female',
      address: [{ line: ['100 Example Way'], city: 'Springfield', state: 'IL', postalCode: '62701' }],
    };
    const started = await upload(`${JSON.stringify(patient)}\n{"resourceType":"Coverage"}\nnot json\n`, { 'content-type': 'application/fhir+ndjson' });
    expect(started.status).toBe(202);
    await finished(started.body.id);
    const lines = await results(started.body.id);
    expect(lines[0]).toMatchObject({ line: 1, outcome: 'matched', memberId: '55678' });
    expect(lines.slice(1).map((l) => [l.line, l.outcome])).toEqual([[2, 'rejected'], [3, 'rejected']]);
  });

  it('cancels a job: no more rows are decided', async () => {
    await stopWorkers();
    const started = await upload(roster(2, [], '\n\n'));
    expect(started.status).toBe(202);
    const cancel = await fetch(`${ts.url}/rosters/${started.body.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(cancel.status).toBe(202);
    startWorker();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const after = await status(started.body.id);
    expect(after.body).toMatchObject({ state: 'cancelled', rowsDone: 0 });
    const again = await fetch(`${ts.url}/rosters/${started.body.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(409);
    // A cancelled upload sent again starts afresh.
    const fresh = await upload(roster(2, [], '\n\n'));
    expect(fresh.status).toBe(202);
    expect(fresh.body.id).not.toBe(started.body.id);
    await finished(fresh.body.id);
  });

  it('loses nothing and duplicates nothing when a worker is killed mid-job (SIGKILL)', async () => {
    const rows = members.length * 40;
    const started = await upload(roster(40, [], '\n\n\n'));
    const id = started.body.id as string;
    const db = ts.service.deps.db;
    // Kill while a chunk is being decided (started, not done) after some rows are in, so the kill interrupts work.
    const inFlight = () =>
      db.selectFrom('batch_chunks').select('chunk').where('job_id', '=', id).where('attempts', '>=', 1).where('done_at', 'is', null).execute();
    await eventually(async () => ((await status(id)).body.rowsDone > 0 && (await inFlight()).length > 0 ? true : undefined), 30_000, 5);
    await stopWorkers('SIGKILL');
    // The worker is dead: the chunks started and not done now are the ones the kill interrupted.
    const interrupted = (await inFlight()).map((c) => c.chunk);
    const midway = (await status(id)).body;
    expect(midway.state).toBe('running');
    expect(midway.rowsDone).toBeLessThan(rows);
    startWorker();
    const done = await finished(id, 90_000);
    expect(done).toMatchObject({ state: 'completed', rowsDone: rows });
    const lines = await results(id);
    expect(lines).toHaveLength(rows);
    expect(new Set(lines.map((l) => l.line)).size).toBe(rows);
    // Exactly one audit event per row, and the chain intact.
    const perRow = await sql<{ row: string; n: number }>`
      SELECT details->>'row' AS row, count(*)::int AS n FROM audit_events
      WHERE operation = 'roster-reconcile' AND details->>'batchJob' = ${id} GROUP BY 1`.execute(db);
    expect(perRow.rows).toHaveLength(rows);
    expect(perRow.rows.every((r) => r.n === 1)).toBe(true);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    // The kill interrupted a chunk, which ran again (and found nothing of its first attempt committed).
    expect(interrupted.length).toBeGreaterThan(0);
    const retried = await db.selectFrom('batch_chunks').select('chunk').where('job_id', '=', id).where('attempts', '>', 1).execute();
    expect(retried.map((c) => c.chunk)).toEqual(expect.arrayContaining(interrupted));
  }, 120_000);

  it('refuses bad uploads with a clear answer', async () => {
    expect((await upload(roster(1), { 'content-type': 'application/json' })).status).toBe(415);
    expect((await upload(roster(1), { 'content-encoding': 'br' })).status).toBe(415);
    const empty = await upload(`${header}\n`);
    expect(empty.status).toBe(422);
    expect(empty.body.resourceType).toBe('OperationOutcome');
    const badHeader = await upload('name,dob\nx,y\n');
    expect(badHeader.status).toBe(422);
    expect((await upload(Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' })).status).toBe(400);
    expect((await upload(roster(1), {}, 'not-a-token')).status).toBe(401);
    const partner = await partnerToken(ts, await registerTestPartner(ts));
    const forbidden = await upload(roster(1), {}, partner);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.issue[0].details.coding[0].code).toBe('actor-class-not-allowed');
    const unscoped = await upload(roster(1), {}, await workloadToken('system:serviceaccount:batch:bulk-only', ['system/Group.$bulk-member-match']));
    expect(unscoped.status).toBe(403);
    expect((await status('00000000-0000-0000-0000-000000000000')).status).toBe(404);
  });
});

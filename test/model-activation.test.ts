import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Coverage, Parameters, Patient } from 'fhir/r4.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIndexImport } from '../src/batch/index-import.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { runtimeDatabaseUrl } from '../src/db/database.js';
import { activateModel, createModelProvider, loadActiveModel, saveModel } from '../src/members/model-store.js';
import {
  importRows,
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  ROSTER_HEADER,
  startTestService,
  TEST_OPERATOR,
  type TestService,
} from './support/service.js';

/**
 * Issue 12: an activation (`model activate`, or an index import that refreshes the name frequencies) reaches a
 * running service before the command returns — the very next request is scored by the new model — and two
 * runs of the same requests decide identically whatever their order.
 */

const ROWS = [
  '55678,SUB55678,self,Patricia,Ann,Person,,1974-12-25,female,100 Example Way,Springfield,IL,62701,,,DH10001235,CB135,B37FC,2011-05-23,2012-05-23',
  'G100-01,G100,self,Carlos,,Garcia,,1980-03-02,male,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'G100-02,G100,spouse,Maria,,Garcia,,1982-07-19,female,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'G100-03,G100,child,Olivia,,Garcia,,2015-06-14,female,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'G100-04,G100,child,Oliver,,Garcia,,2015-06-14,male,5 Elm St,Austin,TX,73301,,,CVG100,GRP9,PLN1,2020-01-01,',
  'L200-01,L200,self,Sam,,Lee,,2001-01-01,,9 Oak Ave,Reno,NV,89501,,,CVL200,GRP9,PLN1,2021-01-01,',
];
const MORE_ROWS = [
  'K300-01,K300,self,Aiko,,Tanaka,,1990-11-05,female,12 Pine Rd,Boise,ID,83702,,,CVK300,GRP9,PLN1,2022-01-01,',
  'K301-01,K301,self,Rahul,,Mehta,,1978-04-30,male,77 Birch Ln,Tulsa,OK,74103,,,CVK301,GRP9,PLN1,2022-01-01,',
];


let ts: TestService;
let token: string;

beforeAll(async () => {
  ts = await startTestService();
  await importRows(ts, ROWS);
  token = await partnerToken(ts, await registerTestPartner(ts));
});
afterAll(() => ts?.stop());

function part<T>(request: Parameters, name: string): T {
  return request.parameter!.find((p) => p.name === name)!.resource as T;
}

function requestFor(patient: Partial<Patient>, coverage: Partial<Coverage>): Parameters {
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
  Object.assign(part<Patient>(request, 'MemberPatient'), { identifier: undefined }, patient);
  const toMatch = part<Coverage>(request, 'CoverageToMatch');
  delete toMatch.identifier;
  Object.assign(toMatch, coverage);
  return request;
}

const REQUESTS: Parameters[] = [
  requestFor({ name: [{ family: 'Person', given: ['Patricia'] }], birthDate: '1974-12-25', gender: 'female' }, { subscriberId: 'SUB55678' }),
  requestFor({ name: [{ family: 'Garcia', given: ['Olivia'] }], birthDate: '2015-06-14', gender: 'female' }, { subscriberId: 'G100' }),
  requestFor({ name: [{ family: 'Garcia', given: ['Oliver'] }], birthDate: '2015-06-14', gender: 'male' }, { identifier: [{ value: 'CVG100' }] }),
  requestFor({ name: [{ family: 'Garcia', given: ['Maria'] }], birthDate: '1982-07-19' }, { subscriberId: 'G100' }),
  requestFor({ name: [{ family: 'Lee', given: ['Sam'] }], birthDate: '2001-01-01' }, { subscriberId: 'L200' }),
  requestFor({ name: [{ family: 'Tanaka', given: ['Aiko'] }], birthDate: '1990-11-05', gender: 'female' }, { subscriberId: 'K300' }),
  requestFor({ name: [{ family: 'Mehta', given: ['Rahul'] }], birthDate: '1978-04-30' }, { subscriberId: 'K301' }),
  requestFor({ name: [{ family: 'Nobody', given: ['Nemo'] }], birthDate: '1950-01-01' }, { subscriberId: 'X999' }),
];

/** What a response decided: the member it matched, or the reason it did not. */
function decision(res: { status: number; body: any }): string {
  return res.status === 200 ? `match:${res.body.parameter[0].valueIdentifier.value}` : `${res.status}:${res.body?.issue?.[0]?.details?.coding?.[0]?.code}`;
}

async function lastMemberMatchModel(): Promise<string> {
  const event = (await latestAuditEvents(ts, 10)).find((e) => e.operation === 'member-match');
  return (event!.details as { modelVersion: string }).modelVersion;
}

async function copyOfActive(suffix: string): Promise<string> {
  const active = (await loadActiveModel(ts.service.deps.db))!;
  const version = `${active.version.replace(/\+tf[0-9a-f]{8}$/, '')}-${suffix}`;
  await saveModel(ts.service.deps.db, { ...active, version, training: { test: suffix } }, false);
  return version;
}

describe('model activation reaches a running service at once', () => {
  it('scores the request right after `model activate` returns with the new model', async () => {
    const before = (await loadActiveModel(ts.service.deps.db))!.version;
    await postMemberMatch(ts, token, REQUESTS[0]);
    expect(await lastMemberMatchModel()).toBe(before);

    const next = await copyOfActive('activated');
    await activateModel(ts.service.deps.db, next);
    const res = await postMemberMatch(ts, token, REQUESTS[0]);
    expect(res.status).toBe(200);
    expect(await lastMemberMatchModel()).toBe(next);

    // And back again: an older version re-activated is picked up just the same.
    await activateModel(ts.service.deps.db, before);
    await postMemberMatch(ts, token, REQUESTS[1]);
    expect(await lastMemberMatchModel()).toBe(before);
  });

  it('scores the request right after an index import with the refreshed name frequencies', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mm-model-activation-'));
    const file = path.join(dir, 'roster.csv');
    await writeFile(file, [ROSTER_HEADER, ...ROWS, ...MORE_ROWS].join('\n') + '\n');
    const { job } = await runIndexImport(ts.service.deps.db, file, { memberIdentifierSystem: ts.config.memberIdentifierSystem, owner: TEST_OPERATOR, full: false });
    const summary = job.summary as { model: string; modelChanged: boolean };
    expect(summary.modelChanged).toBe(true);
    expect(summary.model).toMatch(/\+tf[0-9a-f]{8}$/);
    const res = await postMemberMatch(ts, token, REQUESTS[5]);
    expect(decision(res)).toBe('match:K300-01');
    expect(await lastMemberMatchModel()).toBe(summary.model);
  });

  it('gives identical decisions to the same requests sent twice, concurrently and in another order', async () => {
    const next = await copyOfActive('concurrent');
    await activateModel(ts.service.deps.db, next);
    const firstFrom = (await latestAuditEvents(ts, 1))[0]!.seq;
    const first = await Promise.all(REQUESTS.map((r) => postMemberMatch(ts, token, r)));
    const reversed = [...REQUESTS].reverse();
    const second = (await Promise.all(reversed.map((r) => postMemberMatch(ts, token, r)))).reverse();
    expect(first.map(decision)).toEqual(second.map(decision));
    expect(first.map(decision)).toContain('match:G100-03');
    expect(first.map(decision)).toContain('match:K300-01');
    expect(decision(first.at(-1)!)).not.toMatch(/^match:/);

    const events = await ts.service.deps.db
      .selectFrom('audit_events')
      .select(['details'])
      .where('operation', '=', 'member-match')
      .where('seq', '>', firstFrom)
      .execute();
    expect(events).toHaveLength(2 * REQUESTS.length);
    // Every scored decision (a request with no candidate at all is refused before scoring) names the new model.
    const scored = events.map((e) => (e.details as { modelVersion?: string }).modelVersion).filter((v) => v !== undefined);
    expect(scored.length).toBeGreaterThanOrEqual(2 * first.filter((r) => r.status === 200).length);
    expect(new Set(scored)).toEqual(new Set([next]));
  });
});

describe('LISTEN/NOTIFY', () => {
  it('loads a newly activated model on the notification, and again after its connection is lost', async () => {
    const db = ts.service.deps.db;
    const reloads: { version: string; cause: string }[] = [];
    let wake: (() => void) | undefined;
    const provider = await createModelProvider(db, {
      listenUrl: runtimeDatabaseUrl(ts.config),
      reconnectMs: 20,
      onReload: (version, cause) => {
        reloads.push({ version, cause });
        wake?.();
      },
    });
    const notified = (version: string) =>
      new Promise<void>((resolve) => {
        wake = () => reloads.some((r) => r.version === version && r.cause === 'notify') && resolve();
        wake();
      });
    const listening = async () => {
      for (;;) {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN member_match_model'`.execute(db);
        if (rows[0]!.n > 0) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    try {
      await listening();
      const a = await copyOfActive('notify-a');
      await activateModel(db, a);
      await notified(a);
      expect((await provider()).version).toBe(a);

      // The LISTEN connection is killed; the provider re-opens it (and re-checks), and stays exact meanwhile.
      await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN member_match_model'`.execute(db);
      const b = await copyOfActive('notify-b');
      await activateModel(db, b);
      expect((await provider()).version).toBe(b);
      const c = await copyOfActive('notify-c');
      await listening();
      await activateModel(db, c);
      await notified(c);
      expect((await provider()).version).toBe(c);
    } finally {
      await provider.close();
    }
  });
});

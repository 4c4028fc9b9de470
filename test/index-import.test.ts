import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIndexImport } from '../src/batch/index-import.js';
import { ensureActiveModel, loadActiveModel } from '../src/members/model-store.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { TEST_OPERATOR } from './support/service.js';

/** Importing our own eligibility roster as a tracked job: new, changed, ended and reinstated members. */
const SYSTEM = 'http://example.org/old-payer/identifiers/member';

let t: TestDatabase;
let dir: string;
let demo: string[];

beforeAll(async () => {
  t = await createTestDatabase();
  await ensureActiveModel(t.db);
  dir = await mkdtemp(path.join(tmpdir(), 'mm-index-import-'));
  demo = (await readFile(new URL('../fixtures/demo-roster.csv', import.meta.url), 'utf8')).trim().split('\n');
});
afterAll(() => t?.drop());

async function file(name: string, lines: string[]): Promise<string> {
  const target = path.join(dir, name);
  await writeFile(target, lines.join('\n') + '\n');
  return target;
}

const endedOf = async (memberId: string) =>
  (await t.db.selectFrom('members').select('ended_at').where('member_id', '=', memberId).executeTakeFirstOrThrow()).ended_at;

describe('index import job', () => {
  it('imports, reports the job, and keeps the model’s name frequencies in step with the index', async () => {
    const before = (await loadActiveModel(t.db))!.version;
    const { job, created } = await runIndexImport(t.db, await file('day1.csv', demo), { memberIdentifierSystem: SYSTEM, owner: TEST_OPERATOR, full: true });
    expect(created).toBe(true);
    expect(job).toMatchObject({ kind: 'index-import', state: 'completed', totalRows: demo.length - 1, rowsDone: demo.length - 1 });
    const summary = job.summary as { inserted: number; updated: number; unchanged: number };
    expect(summary.inserted + summary.updated + summary.unchanged).toBe(demo.length - 1);
    expect(summary.inserted).toBeGreaterThan(20);
    expect(job.summary).toMatchObject({ ended: 0, reinstated: 0, rejected: 0, modelChanged: true });
    const after = (await loadActiveModel(t.db))!;
    expect(after.version).toMatch(new RegExp(`^${before.replace(/[.+]/g, '\\$&')}\\+tf[0-9a-f]{8}$`));
    expect(after.parameters.termFrequencies.family.GARCIA).toBeGreaterThan(0);

    const audit = await t.db.selectFrom('audit_events').select(['details', 'actor_class']).where('operation', '=', 'index-import').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.details).toMatchObject({ batchJob: job.id, inserted: summary.inserted, authProtocol: 'local' });

    // The same file again is the same job, already done.
    const again = await runIndexImport(t.db, await file('day1.csv', demo), { memberIdentifierSystem: SYSTEM, owner: TEST_OPERATOR, full: true });
    expect(again).toMatchObject({ created: false, job: { id: job.id } });
  });

  it('finds new, changed and ended members in a full snapshot, and re-keys the changed ones', async () => {
    const withoutTaylor = demo.filter((line) => !line.startsWith('10017,'));
    const moved = withoutTaylor.map((line) => (line.startsWith('10001,') ? line.replace('5 Sample St,Austin,TX,73301', '9 New Rd,Boston,MA,02108') : line));
    const day2 = [...moved, '20001,N200,self,Nina,,Newman,,1999-09-09,female,1 First St,Reno,NV,89501,,,CVN200,GRP1,PLN1,2026-01-01,'];
    const { job } = await runIndexImport(t.db, await file('day2.csv', day2), { memberIdentifierSystem: SYSTEM, owner: TEST_OPERATOR, full: true });
    expect(job.summary).toMatchObject({ inserted: 1, updated: 1, ended: 1, reinstated: 0 });
    expect(await endedOf('10017')).toBeInstanceOf(Date);
    expect(await endedOf('10001')).toBeNull();
    // Ended members stay in the index, with their blocking keys: still matchable.
    const taylorKeys = await t.db.selectFrom('member_blocking_keys').innerJoin('members', 'members.id', 'member_blocking_keys.member_uuid')
      .select('key').where('members.member_id', '=', '10017').execute();
    expect(taylorKeys.length).toBeGreaterThan(0);
    const carlosZips = await t.db.selectFrom('member_blocking_keys').innerJoin('members', 'members.id', 'member_blocking_keys.member_uuid')
      .select('key').where('members.member_id', '=', '10001').where('key', 'like', 'gz:%').execute();
    expect(carlosZips.map((k) => k.key.split(':').pop())).toEqual(['02108']);
    expect(await t.db.selectFrom('index_import_seen').select('member_id').execute()).toHaveLength(0);
  });

  it('reinstates an ended member a later file carries again, even in a partial import', async () => {
    const taylor = demo.filter((line) => line.startsWith('10017,'));
    const { job } = await runIndexImport(t.db, await file('taylor.csv', [demo[0]!, ...taylor]), { memberIdentifierSystem: SYSTEM, owner: TEST_OPERATOR, full: false });
    expect(job.summary).toMatchObject({ reinstated: 1, ended: 0, unchanged: 1 });
    expect(await endedOf('10017')).toBeNull();
    // A partial import ends no one.
    expect(await endedOf('10001')).toBeNull();
  });

  it('records a failed import as a failed job', async () => {
    await expect(runIndexImport(t.db, await file('broken.csv', ['name,dob', 'x,y']), { memberIdentifierSystem: SYSTEM, owner: TEST_OPERATOR, full: true })).rejects.toThrow();
    const failed = await t.db.selectFrom('batch_jobs').select(['state', 'error']).where('kind', '=', 'index-import').where('state', '=', 'failed').execute();
    expect(failed).toHaveLength(1);
    expect(await endedOf('10012')).toBeNull();
  });
});

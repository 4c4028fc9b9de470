import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ROSTER_DATA_COLUMNS } from '../src/members/roster-format/columns.js';
import { RosterFileError, type ImportSummary } from '../src/members/roster-format/errors.js';
import { importRoster, importRosterStream } from '../src/members/roster-import.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const SYSTEM = 'http://example.org/old-payer/identifiers/member';
const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const DEMO_CSV = path.join(fixtures, 'demo-roster.csv');
const DEMO_NDJSON = path.join(fixtures, 'demo-roster.ndjson');
const HEADER = ROSTER_DATA_COLUMNS.join(',');

let tdb: TestDatabase;
let dir: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'mm-roster-test-'));
});
afterAll(async () => {
  await tdb?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await sql`TRUNCATE members, member_identifiers, coverages CASCADE`.execute(tdb.db);
});

let fileCounter = 0;
async function tempFile(extension: string, content: string | Buffer): Promise<string> {
  const file = path.join(dir, `roster-${++fileCounter}${extension}`);
  await writeFile(file, content);
  return file;
}

function importFile(file: string, options: { batchSize?: number; onProgress?: (s: ImportSummary) => void } = {}) {
  return importRoster(tdb.db, file, { memberIdentifierSystem: SYSTEM, ...options });
}

type Row = Record<string, unknown>;

/** Every row of the three tables with its physical location and creating transaction. */
async function dumpTables() {
  const members = await sql<Row>`SELECT ctid::text, xmin::text, * FROM members ORDER BY member_id`.execute(tdb.db);
  const identifiers = await sql<Row>`SELECT ctid::text, xmin::text, * FROM member_identifiers ORDER BY system, value`.execute(tdb.db);
  const coverages = await sql<Row>`SELECT ctid::text, xmin::text, * FROM coverages ORDER BY member_uuid, coverage_id`.execute(tdb.db);
  return { members: members.rows, identifiers: identifiers.rows, coverages: coverages.rows };
}

async function counts() {
  const [members, coverages, identifiers] = await Promise.all(
    (['members', 'coverages', 'member_identifiers'] as const).map(async (table) =>
      Number((await tdb.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n),
    ),
  );
  return { members, coverages, identifiers };
}

function memberByMemberId(memberId: string) {
  return tdb.db.selectFrom('members').selectAll().where('member_id', '=', memberId).executeTakeFirstOrThrow();
}

describe('CSV roster import', () => {
  it('imports the demo roster: every row inserted, keys and identifiers stored', async () => {
    const summary = await importFile(DEMO_CSV);
    expect(summary).toEqual({ rows: 39, inserted: 39, updated: 0, unchanged: 0, rejected: 0, errors: [] });
    // Two members have two coverages each.
    expect(await counts()).toEqual({ members: 37, coverages: 39, identifiers: 37 });

    const patricia = await memberByMemberId('55678');
    expect(patricia).toMatchObject({
      given: 'Patricia',
      middle: 'Ann',
      family: 'Person',
      suffix: null,
      birth_date: '1974-12-25',
      gender: 'female',
      state: 'IL',
      postal_code: '62701',
      family_key: 'PERSON',
      given_key: 'PATRICIA',
      source_resource_id: null,
    });
    expect(patricia.content_hash).toMatch(/^[0-9a-f]{64}$/);
    const coverage = await tdb.db.selectFrom('coverages').selectAll().where('member_uuid', '=', patricia.id).executeTakeFirstOrThrow();
    expect(coverage).toMatchObject({
      coverage_id: 'DH10001235',
      subscriber_id: 'DH10001235',
      relationship: 'self',
      group_id: 'CB135',
      plan_id: 'B37FC',
      period_start: '2011-05-23',
      period_end: '2012-05-23',
    });
    const identifier = await tdb.db.selectFrom('member_identifiers').selectAll().where('member_uuid', '=', patricia.id).executeTakeFirstOrThrow();
    expect(identifier).toMatchObject({ system: SYSTEM, value: '55678', type_code: 'MB' });

    // Twins: one family, one birth date, two members.
    const twins = await tdb.db.selectFrom('members').select(['given_key', 'member_id']).where('family_key', '=', 'GARCIA').where('birth_date', '=', '2015-06-14').orderBy('given_key').execute();
    expect(twins.map((t) => t.given_key)).toEqual(['OLIVER', 'OLIVIA']);
    // Quoted field with a comma; accents folded in the key.
    expect((await memberByMemberId('10009')).address_line).toBe('Apt 4, 77 Test Ln');
    expect((await memberByMemberId('10010')).family_key).toBe('NUNEZ');
    expect((await memberByMemberId('10007')).suffix).toBe('Jr');
  });

  it('is idempotent: a second import is all unchanged and changes no table row', async () => {
    await importFile(DEMO_CSV);
    const before = await dumpTables();
    const again = await importFile(DEMO_CSV, { batchSize: 7 });
    expect(again).toEqual({ rows: 39, inserted: 0, updated: 0, unchanged: 39, rejected: 0, errors: [] });
    expect(await dumpTables()).toEqual(before);
  });

  it('counts a changed member or coverage as updated and rewrites only that row', async () => {
    await importFile(DEMO_CSV);
    const before = await dumpTables();
    const text = await readFile(DEMO_CSV, 'utf8');
    const changed = text
      .replace('100 Example Way,Springfield,IL', '200 Example Way,Springfield,IL') // Patricia moved
      .replace('CVS305,GRP2,EPO1K,2023-01-01,\n', 'CVS305,GRP2,EPO1K,2023-01-01,2023-12-31\n'); // first Nguyen row's coverage ended
    expect(changed).not.toBe(text);
    const summary = await importFile(await tempFile('.csv', changed));
    expect(summary).toMatchObject({ rows: 39, inserted: 0, updated: 2, unchanged: 37, rejected: 0 });

    const after = await dumpTables();
    const patricia = after.members.find((m) => m.member_id === '55678')!;
    const patriciaBefore = before.members.find((m) => m.member_id === '55678')!;
    expect(patricia.address_line).toBe('200 Example Way');
    expect(patricia.content_hash).not.toBe(patriciaBefore.content_hash);
    expect((patricia.updated_at as Date).getTime()).toBeGreaterThan((patriciaBefore.updated_at as Date).getTime());
    expect(after.members.filter((m) => m.member_id !== '55678')).toEqual(before.members.filter((m) => m.member_id !== '55678'));
    const changedCoverages = after.coverages.filter((c, i) => JSON.stringify(c) !== JSON.stringify(before.coverages[i]));
    expect(changedCoverages).toHaveLength(1);
    expect(changedCoverages[0]).toMatchObject({ coverage_id: 'CVS305', period_end: '2023-12-31' });
  });

  it('treats a later row with other demographics for the same member as an update, in file order', async () => {
    const file = await tempFile(
      '.csv',
      [
        HEADER,
        'M1,S1,self,Ann,,Lee,,1990-01-01,female,,,,,,,C1,,,,',
        'M1,S1,self,Ann,,Lee,,1990-01-01,female,,,,,,,C2,,,,', // same member, new coverage
        'M1,S1,self,Ann,,Lee-Park,,1990-01-01,female,,,,,,,C2,,,,', // member changed, coverage repeated
        'M1,S1,self,Ann,,Lee-Park,,1990-01-01,female,,,,,,,C2,,,,', // exact repeat
      ].join('\n'),
    );
    expect(await importFile(file)).toMatchObject({ rows: 4, inserted: 2, updated: 1, unchanged: 1, rejected: 0 });
    expect((await memberByMemberId('M1')).family).toBe('Lee-Park');
    expect(await counts()).toEqual({ members: 1, coverages: 2, identifiers: 1 });
  });

  it('reports bad rows by physical line without their values, and imports the good rows', async () => {
    const lines = [
      HEADER, // 1
      'B1,S1,self,Good,,Row,,1980-01-01,male,"Line one',  // 2: a quoted field spanning two lines
      'line two",Town,tx,00501,,,CB1,,,,', // 3
      'B2,S2,self,Bad,,Date,,1980-02-30,female,,,,,,,CB2,,,,', // 4: no 30 February
      '', // 5: blank, ignored
      ',S3,self,No,,Id,,1980-01-01,female,,,,,,,CB3,,,,', // 6: missing member_id
      'B4,S4,self,Bad,,Gender,,1980-01-01,F,,,,,,,CB4,,,,', // 7: gender code
      'B5,S5,self,Future,,Born,,2999-01-01,male,,,,,,,CB5,,,,', // 8: future birth date
      'B6,S6,self,Short,,Row', // 9: wrong field count
      'B7,S7,brother,Bad,,Period,,1980-01-01,male,,,,,,,CB7,,,2020-02-01,2020-01-01', // 10: two problems
      'B8,S8,SELF,Good,,Again,,1999-12-31,Female,,,,,,,CB8,,,2020-01-01,', // 11: codes in other case are fine
    ];
    const summary = await importFile(await tempFile('.csv', lines.join('\r\n') + '\r\n'));
    expect(summary).toMatchObject({ rows: 8, inserted: 2, updated: 0, unchanged: 0, rejected: 6 });
    expect(summary.errors).toEqual([
      { line: 4, reason: 'birth_date is not a valid date (expected YYYY-MM-DD)' },
      { line: 6, reason: 'missing member_id' },
      { line: 7, reason: 'gender must be an administrative gender code (male, female, other, unknown)' },
      { line: 8, reason: 'birth_date is in the future' },
      { line: 9, reason: 'expected 20 fields, found 6' },
      {
        line: 10,
        reason:
          'relationship must be a subscriber-relationship code (self, spouse, child, parent, common, injured, other); period_start is after period_end',
      },
    ]);
    const joined = JSON.stringify(summary.errors);
    for (const value of ['Bad', 'Date', '1980-02-30', '2999-01-01', 'Future', 'Short', 'B2', 'brother', 'F,']) {
      expect(joined).not.toContain(value);
    }
    const good = await memberByMemberId('B1');
    expect(good).toMatchObject({ address_line: 'Line one\r\nline two', state: 'TX', postal_code: '00501' });
    expect(await memberByMemberId('B8')).toMatchObject({ gender: 'female' });
    expect(await counts()).toEqual({ members: 2, coverages: 2, identifiers: 2 });
  });

  it('rejects the whole file for an unknown, duplicated or missing header column', async () => {
    const unknown = await tempFile('.csv', `${HEADER},favourite_colour\n55678,,,A,,B,,1970-01-01,,,,,,,,C,,,,,blue\n`);
    await expect(importFile(unknown)).rejects.toThrow(/unknown column "favourite_colour"/);
    const duplicated = await tempFile('.csv', `${HEADER},given\n`);
    await expect(importFile(duplicated)).rejects.toThrow(/column "given" appears twice/);
    const missing = await tempFile('.csv', HEADER.replace('birth_date,', '').replace(',coverage_id', '') + '\n');
    await expect(importFile(missing)).rejects.toThrow(/lacks the required column\(s\) birth_date, coverage_id/);
    // A roster without its header: the first data row is not echoed back.
    const headless = await tempFile('.csv', '55678,,,Patricia,,Person,,1974-12-25,,,,,,,,C,,,,\n');
    await expect(importFile(headless)).rejects.toThrow(RosterFileError);
    await expect(importFile(headless)).rejects.not.toThrow(/Patricia/);
    await expect(importFile(await tempFile('.csv', ''))).rejects.toThrow(/empty/);
    expect(await counts()).toEqual({ members: 0, coverages: 0, identifiers: 0 });
  });

  it('stores awkward text exactly: quotes, backslashes, braces, commas and the word NULL', async () => {
    const file = await tempFile(
      '.csv',
      `${HEADER}\nW1,"{a,b}",,NULL,"x""y\\z",O'Brien-Núñez,,1970-01-01,,"1 ""Main"" St, Apt {2}",\\,ny,,,,"C,1",NULL,,,\n`,
    );
    expect(await importFile(file)).toMatchObject({ inserted: 1, rejected: 0 });
    const member = await memberByMemberId('W1');
    expect(member).toMatchObject({ given: 'NULL', middle: 'x"y\\z', family: "O'Brien-Núñez", family_key: 'OBRIENNUNEZ', address_line: '1 "Main" St, Apt {2}', city: '\\', state: 'NY' });
    const coverage = await tdb.db.selectFrom('coverages').selectAll().where('member_uuid', '=', member.id).executeTakeFirstOrThrow();
    expect(coverage).toMatchObject({ coverage_id: 'C,1', subscriber_id: '{a,b}', group_id: 'NULL', plan_id: null });
    expect(await importFile(file)).toMatchObject({ unchanged: 1 });
  });

  it('fails on a missing file and imports nothing from a header-only file', async () => {
    await expect(importFile(path.join(dir, 'nope.csv'))).rejects.toThrow(/ENOENT/);
    expect(await importFile(await tempFile('.csv', HEADER + '\n\n'))).toEqual({ rows: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0, errors: [] });
  });

  it('accepts the columns in any order and without the optional ones', async () => {
    const file = await tempFile('.csv', 'coverage_id,birth_date,family,given,member_id\nC9,1970-05-05,Doe,Jane,X9\n');
    expect(await importFile(file)).toMatchObject({ rows: 1, inserted: 1, rejected: 0 });
    expect(await memberByMemberId('X9')).toMatchObject({ given: 'Jane', family: 'Doe', gender: null, phone: null });
  });

  it('stops at broken CSV syntax, naming the line, after importing the rows before it', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => `Q${i},,,Name,,Family,,1970-01-01,,,,,,,,C${i},,,,`);
    const file = await tempFile('.csv', [HEADER, ...rows, 'Q99,,,"Broken,,Family,,1970-01-01,,,,,,,,C99,,,,', ...rows.map((r) => r.replace(/^Q/, 'R'))].join('\n'));
    const error = await importFile(file, { batchSize: 8 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterFileError);
    expect((error as RosterFileError).line).toBe(32);
    expect((error as RosterFileError).message).toMatch(/malformed CSV at line 32/);
    expect((error as RosterFileError).summary).toMatchObject({ rows: 30, inserted: 30 });
    expect(await counts()).toEqual({ members: 30, coverages: 30, identifiers: 30 });
  });

  it('keeps at most 1000 errors while counting every rejection', async () => {
    const bad = Array.from({ length: 1500 }, (_, i) => `,,,,,,,,,,,,,,,C${i},,,,`);
    const summary = await importFile(await tempFile('.csv', [HEADER, ...bad].join('\n')));
    expect(summary.rejected).toBe(1500);
    expect(summary.rows).toBe(1500);
    expect(summary.errors).toHaveLength(1000);
    expect(summary.errors[999]!.line).toBe(1001);
  });

  it('reports progress after each batch', async () => {
    const progress: ImportSummary[] = [];
    await importFile(DEMO_CSV, { batchSize: 10, onProgress: (s) => progress.push(s) });
    expect(progress.map((p) => p.rows)).toEqual([10, 20, 30, 39]);
    expect(progress.at(-1)!.inserted).toBe(39);
  });

  it('reads gzip by its .gz suffix', async () => {
    const file = await tempFile('.csv.gz', gzipSync(await readFile(DEMO_CSV)));
    expect(await importFile(file)).toMatchObject({ rows: 39, inserted: 39, rejected: 0 });
    expect(await importFile(file)).toMatchObject({ rows: 39, unchanged: 39 });
    const broken = await tempFile('.csv.gz', Buffer.from('not gzip at all'));
    await expect(importFile(broken)).rejects.toThrow(/not valid gzip/);
  });

  it('refuses an unknown file extension', async () => {
    await expect(importFile(await tempFile('.xlsx', 'x'))).rejects.toThrow(/unsupported roster file name/);
  });
});

describe('FHIR NDJSON roster import', () => {
  it('imports Patients and links each Coverage to its Patient', async () => {
    const summary = await importFile(DEMO_NDJSON);
    expect(summary).toEqual({ rows: 10, inserted: 10, updated: 0, unchanged: 0, rejected: 0, errors: [] });
    expect(await counts()).toEqual({ members: 5, coverages: 5, identifiers: 5 });

    const patricia = await memberByMemberId('55678');
    expect(patricia).toMatchObject({
      source_resource_id: 'pat-55678',
      given: 'Patricia',
      middle: 'Ann',
      family: 'Person',
      birth_date: '1974-12-25',
      gender: 'female',
      address_line: '100 Example Way',
      state: 'IL',
      phone: '555-0100',
      email: 'patricia.person@example.com',
    });
    const coverage = await tdb.db.selectFrom('coverages').selectAll().where('member_uuid', '=', patricia.id).executeTakeFirstOrThrow();
    expect(coverage).toMatchObject({ coverage_id: 'DH10001235', group_id: 'CB135', plan_id: 'B37FC', period_start: '2011-05-23', period_end: '2012-05-23', relationship: 'self' });

    // Found by its MB-typed identifier though the system differs; the dateTime period start keeps its date.
    const oliver = await memberByMemberId('10004');
    expect(oliver).toMatchObject({ source_resource_id: 'pat-10004', given_key: 'OLIVER' });
    const oliverCoverage = await tdb.db.selectFrom('coverages').selectAll().where('member_uuid', '=', oliver.id).executeTakeFirstOrThrow();
    expect(oliverCoverage).toMatchObject({ coverage_id: 'CVG100', relationship: 'child', period_start: '2020-01-01' });
    expect((await memberByMemberId('10005')).suffix).toBe('Sr');

    const before = await dumpTables();
    expect(await importFile(DEMO_NDJSON, { batchSize: 3 })).toMatchObject({ rows: 10, unchanged: 10 });
    expect(await dumpTables()).toEqual(before);
  });

  it('links a Coverage to a Patient imported in an earlier batch or an earlier import', async () => {
    const lines = (await readFile(DEMO_NDJSON, 'utf8')).trim().split('\n');
    const patients = lines.filter((l) => l.includes('"resourceType":"Patient"'));
    const coverages = lines.filter((l) => l.includes('"resourceType":"Coverage"'));
    expect(await importFile(await tempFile('.ndjson', patients.join('\n')), { batchSize: 2 })).toMatchObject({ inserted: 5 });
    expect(await importFile(await tempFile('.jsonl', coverages.join('\n')), { batchSize: 2 })).toMatchObject({ inserted: 5, rejected: 0 });
    expect(await counts()).toEqual({ members: 5, coverages: 5, identifiers: 5 });
  });

  it('rejects a Coverage whose Patient comes later, and lines that are not Patient or Coverage', async () => {
    const lines = (await readFile(DEMO_NDJSON, 'utf8')).trim().split('\n');
    const [patricia, patriciaCoverage] = lines as [string, string];
    const text = [
      patriciaCoverage, // 1: its Patient is on line 2
      patricia, // 2
      '{"resourceType":"Observation","id":"o1"}', // 3
      '{not json', // 4
      '', // 5: blank
      '{"resourceType":"Patient","id":"p9","name":[{"family":"Solo","given":["Han"]}],"birthDate":"1977-05-25"}', // 6: no member id
      patriciaCoverage, // 7: now fine
      '{"resourceType":"Coverage","identifier":[{"value":"X1"}],"beneficiary":{"reference":"Patient/nobody"}}', // 8
    ].join('\n');
    const summary = await importFile(await tempFile('.ndjson', text), { batchSize: 4 });
    expect(summary).toMatchObject({ rows: 7, inserted: 2, rejected: 5 });
    expect(summary.errors).toEqual([
      { line: 1, reason: 'beneficiary Patient not found; Patient lines must precede their Coverage' },
      { line: 3, reason: 'unsupported resourceType (only Patient and Coverage are imported)' },
      { line: 4, reason: 'not valid JSON' },
      { line: 6, reason: 'missing Patient.identifier (member id)' },
      { line: 8, reason: 'beneficiary Patient not found; Patient lines must precede their Coverage' },
    ]);
    expect(await counts()).toEqual({ members: 1, coverages: 1, identifiers: 1 });
  });

  it('does not let two members claim one Patient.id', async () => {
    const a = '{"resourceType":"Patient","id":"p1","identifier":[{"system":"' + SYSTEM + '","value":"A1"}],"name":[{"family":"One","given":["A"]}],"birthDate":"1970-01-01"}';
    const b = a.replace('"A1"', '"B1"');
    const summary = await importFile(await tempFile('.ndjson', `${a}\n${b}\n`));
    expect(summary).toMatchObject({ inserted: 1, rejected: 1, errors: [{ line: 2, reason: 'Patient.id is already used by another member' }] });
  });

  it('keeps the Patient.id when the same member is later imported from CSV', async () => {
    await importFile(DEMO_NDJSON);
    const text = await readFile(DEMO_CSV, 'utf8');
    const summary = await importFile(await tempFile('.csv', text));
    // The same people from either format hash the same: Patricia and three Garcias are unchanged; Robert Sr's
    // CSV row adds a phone and an email; everyone else is new.
    expect(summary).toMatchObject({ rows: 39, inserted: 34, updated: 1, unchanged: 4, rejected: 0 });
    const patricia = await memberByMemberId('55678');
    expect(patricia.source_resource_id).toBe('pat-55678');
  });

  it('imports from any readable stream', async () => {
    const summary = await importRosterStream(tdb.db, Readable.from([await readFile(DEMO_NDJSON)]), 'ndjson', { memberIdentifierSystem: SYSTEM });
    expect(summary).toMatchObject({ rows: 10, inserted: 10 });
    const gz = await tempFile('.ndjson.gz', gzipSync(await readFile(DEMO_NDJSON)));
    expect(await importFile(gz)).toMatchObject({ rows: 10, unchanged: 10 });
  });
});

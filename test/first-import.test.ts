import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memberBlockingKeys } from '../src/matching/blocking.js';
import { buildDeferredIndexes, deferIndexes } from '../src/members/first-import.js';
import { memberMatchProfile, type MemberRecord } from '../src/members/member-repository.js';
import { ROSTER_DATA_COLUMNS } from '../src/members/roster-format/columns.js';
import { importRoster } from '../src/members/roster-import.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * The first import into an empty index builds the index tables' secondary indexes and foreign keys after the
 * rows are in (src/members/first-import.ts): afterwards the schema is as the migrations made it, a member written
 * twice in the file keeps only its latest blocking keys, and an import that stopped half-way is repaired by the
 * next one.
 */
const SYSTEM = 'http://example.org/old-payer/identifiers/member';
const HEADER = ROSTER_DATA_COLUMNS.join(',');
let tdb: TestDatabase;
let dir: string;
let schemaBefore: string[];

/** Every index and constraint of the index tables, by name and definition. */
async function schema(): Promise<string[]> {
  const { rows } = await sql<{ d: string }>`
    SELECT c.relname || ' ' || pg_get_indexdef(i.indexrelid) AS d FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid IN ('members'::regclass, 'member_blocking_keys'::regclass, 'member_identifiers'::regclass, 'coverages'::regclass)
    UNION ALL
    SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid IN ('members'::regclass, 'member_blocking_keys'::regclass, 'member_identifiers'::regclass, 'coverages'::regclass)
    ORDER BY 1`.execute(tdb.db);
  return rows.map((r) => r.d);
}

function row(memberId: string, given: string, family: string, birthDate: string): string {
  const fields: Record<string, string> = { member_id: memberId, given, family, birth_date: birthDate, gender: 'female', coverage_id: `C-${memberId}` };
  return ROSTER_DATA_COLUMNS.map((c) => fields[c] ?? '').join(',');
}

async function keysOf(memberId: string): Promise<string[]> {
  const { rows } = await sql<{ key: string }>`
    SELECT k.key FROM member_blocking_keys k JOIN members m ON m.id = k.member_uuid WHERE m.member_id = ${memberId} ORDER BY k.key`.execute(tdb.db);
  return rows.map((r) => r.key);
}

function expectedKeys(given: string, family: string, birthDate: string): string[] {
  const record: MemberRecord = {
    memberId: 'x', sourceResourceId: null, given, middle: null, family, suffix: null, birthDate, gender: 'female',
    addressLine: null, city: null, state: null, postalCode: null, phone: null, email: null,
  };
  return [...new Set(memberBlockingKeys({ ...memberMatchProfile(record), identifiers: [] }))].sort();
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'mm-first-import-'));
  schemaBefore = await schema();
});
afterAll(async () => {
  await tdb?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await sql`TRUNCATE members, member_identifiers, coverages, member_blocking_keys CASCADE`.execute(tdb.db);
});

describe('first import into an empty index', () => {
  it('builds the deferred indexes and keys afterwards, and a member written twice keeps only its latest keys', async () => {
    const rows = [row('M1', 'Ann', 'Lee', '1980-01-02'), ...Array.from({ length: 30 }, (_, i) => row(`F${i}`, 'Bob', `Filler${i}`, '1990-03-04')), row('M1', 'Annabel', 'Leigh', '1981-05-06')];
    const file = path.join(dir, 'twice.csv');
    await writeFile(file, [HEADER, ...rows].join('\n') + '\n');
    // Batches of 10: the second version of M1 arrives in a later batch, as an update.
    const summary = await importRoster(tdb.db, file, { memberIdentifierSystem: SYSTEM, batchSize: 10 });
    expect(summary).toMatchObject({ rows: 32, inserted: 31, updated: 1, rejected: 0 });
    expect(await schema()).toEqual(schemaBefore);
    expect((await sql`SELECT 1 FROM index_import_deferred`.execute(tdb.db)).rows).toHaveLength(0);
    expect(await keysOf('M1')).toEqual(expectedKeys('Annabel', 'Leigh', '1981-05-06'));
    expect(await keysOf('F3')).toEqual(expectedKeys('Bob', 'Filler3', '1990-03-04'));
  });

  it('does not defer anything when the index already has members', async () => {
    const file = path.join(dir, 'one.csv');
    await writeFile(file, `${HEADER}\n${row('A1', 'Cy', 'Ng', '1970-07-07')}\n`);
    await importRoster(tdb.db, file, { memberIdentifierSystem: SYSTEM });
    expect(await deferIndexes(tdb.db)).toBe(false);
    expect(await schema()).toEqual(schemaBefore);
  });

  it('an import that stopped half-way leaves its definitions behind; the next import builds them first', async () => {
    expect(await deferIndexes(tdb.db)).toBe(true);
    expect(await schema()).not.toEqual(schemaBefore);
    // (the process died here)
    const file = path.join(dir, 'after-crash.csv');
    await writeFile(file, `${HEADER}\n${row('B1', 'Di', 'Oh', '1960-06-06')}\n`);
    await importRoster(tdb.db, file, { memberIdentifierSystem: SYSTEM });
    expect(await schema()).toEqual(schemaBefore);
    expect(await buildDeferredIndexes(tdb.db)).toBe(0);
    expect(await keysOf('B1')).toEqual(expectedKeys('Di', 'Oh', '1960-06-06'));
  });
});

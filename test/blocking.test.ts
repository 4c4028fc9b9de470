import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { up as rekeyToVersion7 } from '../migrations/0020_blocking_keys_v7.js';
import { convertedProfile } from '../migrations/0021_member_match_profiles.js';
import { down as dropProfileCardValues, up as addProfileCardValues } from '../migrations/0023_profile_card_values.js';
import { blockKind, memberBlockingKeys, queryBlockingKeys } from '../src/matching/blocking.js';
import { normalizePerson } from '../src/matching/normalize.js';
import type { PersonFields } from '../src/matching/record.js';
import { decodeMatchProfile, encodeMatchProfile, MATCH_PROFILE_VERSION, matchProfile, personFromProfile } from '../src/matching/profile.js';
import { findCandidates } from '../src/matching/engine.js';
import { compareCandidate } from '../src/matching/decide.js';
import { memberIndexCandidates } from '../src/members/candidate-source.js';
import { importRoster } from '../src/members/roster-import.js';
import { projectFile } from '../src/project-files.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const shared = (query: PersonFields, member: PersonFields) => {
  const memberKeys = new Set(memberBlockingKeys(normalizePerson(member)));
  return queryBlockingKeys(normalizePerson(query)).filter((k) => memberKeys.has(k)).map(blockKind);
};

const william = { given: 'William', family: 'Turner', birthDate: '1961-04-09', postalCode: '30301', phone: '404-555-0199' };

describe('blocking keys', () => {
  it('puts a nickname, a married name, a move and a date typo into some common block', () => {
    expect(shared({ ...william, given: 'Bill' }, william)).toEqual(expect.arrayContaining(['d', 'gf', 'gz', 'gm']));
    expect(shared({ ...william, family: 'Turner-Hall' }, william)).toEqual(expect.arrayContaining(['d', 'gz']));
    expect(shared({ ...william, postalCode: '94105', phone: undefined }, william)).toEqual(expect.arrayContaining(['d', 'fy', 'gf']));
    expect(shared({ ...william, birthDate: '1961-09-04' }, william)).toContain('d'); // day and month transposed
    expect(shared({ ...william, birthDate: '1961-04-19' }, william)).toEqual(expect.arrayContaining(['fy', 'gf', 'gz']));
  });

  it('finds a duplicate whose names, birth date and postcode were all corrupted, by house number and street', () => {
    // FEBRL3's q0000842 shape: names exchanged and mistyped, another birth date, postcode digits swapped, the
    // street's suffix run into its name. Only `hs` is left.
    const member = { given: 'Joshua', family: 'Campbell', birthDate: '1967-02-27', addressLine: '12 Ballumbir Street, Hornby Lighthouse', city: 'Harbord', postalCode: '3198' };
    const query = { given: 'Campblel', family: 'Joshua', birthDate: '1980-10-08', addressLine: '12 ballumbirxtreet', city: 'Harbord', postalCode: '3189' };
    expect(shared(query, member)).toEqual(['hs']);
    // A neighbour at another number on the same street shares no block.
    expect(shared({ ...query, addressLine: '14 Ballumbir Street' }, member)).toEqual([]);
  });

  it('keys the birth-date block by either name\'s initial, so a day\'s births are not one block', () => {
    const keys = memberBlockingKeys(normalizePerson(william)).filter((k) => blockKind(k) === 'd');
    expect(keys).toEqual(['d:1961-04-09:fT', 'd:1961-04-09:gW']);
    // A married name, a nickname, names exchanged on the form: each keeps one initial in its place.
    expect(shared({ ...william, family: 'Hall', postalCode: '94105', phone: undefined }, william)).toContain('d');
    expect(shared({ ...william, given: 'Bill', postalCode: '94105', phone: undefined }, william)).toContain('d');
    expect(shared({ ...william, given: 'Turner', family: 'William', postalCode: '94105', phone: undefined }, william)).toContain('d');
    // Another person born the same day with other initials shares no block.
    expect(shared({ given: 'Anna', family: 'Lopez', birthDate: william.birthDate }, william)).toEqual([]);
  });

  it('keys the given-name birthday block by decade and by family initial, so either slip alone keeps it', () => {
    // Found at 1,000,000 members (bench:batch, keys version 6): a decade digit mistyped, the family name
    // mistyped to another sound, and a move. Only the family-initial `gm` key is left; the decade key alone lost it.
    const member = { given: 'Gianna', middle: 'Harper', family: 'Hall', birthDate: '2021-11-30', addressLine: '36 Briarwood Way', postalCode: '76175' };
    const query = { given: 'Gianna', middle: 'Harper', family: 'Hll', birthDate: '2001-11-30', addressLine: '948 Fairway Cir', postalCode: '48277' };
    expect(shared(query, member)).toEqual(['gm']);
    // A married name with a slip in the year's last digit keeps the decade key.
    expect(shared({ ...member, family: 'Okafor', birthDate: '2022-11-30', addressLine: '1 Elm St', postalCode: '10001' }, member)).toEqual(['gm']);
  });

  it('files nothing under placeholder values', () => {
    const keys = memberBlockingKeys(normalizePerson({ given: 'Baby Boy', family: 'Unknown', birthDate: '1900-01-01', phone: '000-000-0000' }));
    expect(keys).toEqual([]);
  });
});

describe('stored match profiles', () => {
  const fields = { given: 'Bill', family: 'Turner-Hall', birthDate: '1961-04-09', postalCode: '30301-1234', identifiers: ['m1', 'S2'] };
  it('stand in for normalisation, identifiers apart', () => {
    expect(personFromProfile(encodeMatchProfile(matchProfile(fields)), fields)).toEqual(normalizePerson(fields));
    const full = { ...fields, middle: 'Ann Marie', suffix: 'Jr', sex: 'male', addressLine: '12 N Main St Apt 4', city: 'St. Kilda', phone: '(404) 555-0199', email: 'Bill@Example.org' };
    expect(personFromProfile(encodeMatchProfile(matchProfile(full)), full)).toEqual(normalizePerson(full));
  });
  it('are recomputed when written by another version of the normaliser, or missing', () => {
    const stale = encodeMatchProfile({ ...matchProfile(fields), v: MATCH_PROFILE_VERSION - 1, given: 'SOMETHING ELSE' });
    expect(personFromProfile(stale, fields)).toEqual(normalizePerson(fields));
    expect(personFromProfile(null, fields)).toEqual(normalizePerson(fields));
    expect(personFromProfile('', fields)).toEqual(normalizePerson(fields)); // what migration 0021 stores for a stale one
  });
  it('keep every field in its place when a value holds a separator', () => {
    const profile = { ...matchProfile({ ...fields, email: 'a@b.org' }), email: 'a\x1fb\x1e@b.org' };
    const decoded = decodeMatchProfile(encodeMatchProfile(profile), []);
    expect(decoded).toMatchObject({ email: 'a\uFFFDb\uFFFD@b.org', given: 'BILL', zip5: '30301', familyParts: ['TURNER', 'HALL'] });
  });
});

/** Puts back `members.match_profile` as the jsonb migration 0003 made it, filled from today's stored profiles. */
async function withJsonProfiles(db: TestDatabase['db']): Promise<void> {
  await sql`ALTER TABLE members ADD COLUMN match_profile jsonb`.execute(db);
  const stored = await db.selectFrom('member_match_profiles').select(['member_uuid', 'profile']).execute();
  for (const { member_uuid, profile } of stored) {
    const { identifiers: _identifiers, ...person } = decodeMatchProfile(profile, [])!;
    await sql`UPDATE members SET match_profile = ${JSON.stringify({ ...person, v: MATCH_PROFILE_VERSION })}::jsonb WHERE id = ${member_uuid}`.execute(db);
  }
}

describe('candidate retrieval in Postgres', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    const summary = await importRoster(t.db, projectFile('fixtures', 'demo-roster.csv'), { memberIdentifierSystem: 'urn:test:member' });
    expect(summary.rejected).toBe(0);
  });
  afterAll(() => t.drop());

  it('migration 0020 re-keys an index keyed by version 4 into version 7\'s birth-date and birthday blocks', async () => {
    const keysNow = async () =>
      (await sql<{ key: string; member_uuid: string }>`SELECT key, member_uuid FROM member_blocking_keys ORDER BY key, member_uuid`.execute(t.db)).rows;
    const imported = await keysNow();
    // The profiles as the jsonb column they were in until migration 0021, which migration 0020 reads.
    await withJsonProfiles(t.db);
    // Back to version 4's shape: one `d:<date>` and one `gm:<code>:<MM-DD>` per member, as that code filed them.
    await sql`DELETE FROM member_blocking_keys WHERE key LIKE 'd:%' OR key LIKE 'gm:%'`.execute(t.db);
    await sql`INSERT INTO member_blocking_keys (key, member_uuid)
      SELECT 'd:' || (match_profile->>'birthDate'), id FROM members WHERE match_profile->>'birthDate' IS NOT NULL
      UNION SELECT 'gm:' || (match_profile->'givenPhonetic'->>0) || ':' || substr(match_profile->>'birthDate', 6), id FROM members
        WHERE match_profile->>'birthDate' IS NOT NULL AND match_profile->'givenPhonetic'->>0 IS NOT NULL`.execute(t.db);
    expect(await keysNow()).not.toEqual(imported);
    // Migrations are written against an untyped Kysely, as the migrator runs them.
    const migrationDb = t.db as unknown as Kysely<unknown>;
    await rekeyToVersion7(migrationDb);
    expect(await keysNow()).toEqual(imported);
    // Run again on an index already in version 7's shape: nothing changes.
    await rekeyToVersion7(migrationDb);
    expect(await keysNow()).toEqual(imported);
    await sql`ALTER TABLE members DROP COLUMN match_profile`.execute(t.db);
  });

  it('migration 0021 converts every jsonb profile into exactly the text an import stores', async () => {
    await withJsonProfiles(t.db);
    // A profile of another version becomes the empty (stale) profile.
    await sql`UPDATE members SET match_profile = jsonb_set(match_profile, '{v}', '1') WHERE member_id = '55678'`.execute(t.db);
    const rows = (
      await sql<{ member_id: string; stored: string; converted: string }>`
        SELECT m.member_id, p.profile AS stored, ${convertedProfile} AS converted FROM members m JOIN member_match_profiles p ON p.member_uuid = m.id`.execute(t.db)
    ).rows;
    expect(rows.length).toBeGreaterThan(30);
    for (const row of rows) expect(row.converted, row.member_id).toBe(row.member_id === '55678' ? '' : row.stored);
    await sql`ALTER TABLE members DROP COLUMN match_profile`.execute(t.db);
  });

  it('scores a member whose stored profile is stale from its demographics, normalised afresh', async () => {
    const pat = { given: 'Pat', family: 'Person', birthDate: '1974-12-25', identifiers: ['NOT-OURS-1'] };
    const personOf = async () => (await findCandidates(memberIndexCandidates(t.db, 1000), pat)).candidates.find((c) => c.memberId === '55678')?.person;
    const fresh = await personOf();
    expect(fresh?.family).toBe('PERSON');
    // What migration 0021 leaves for a profile of another version, and what a later normaliser would find.
    const stored = await t.db.selectFrom('member_match_profiles').select('profile').where('member_id', '=', '55678').executeTakeFirstOrThrow();
    for (const stale of ['', stored.profile.replace(/^\d+/, String(MATCH_PROFILE_VERSION + 1))]) {
      await t.db.updateTable('member_match_profiles').set({ profile: stale }).where('member_id', '=', '55678').execute();
      expect(await personOf()).toEqual(fresh);
    }
    await t.db.updateTable('member_match_profiles').set({ profile: stored.profile }).where('member_id', '=', '55678').execute();
  });

  it('stores blocking keys at import and finds the member through them without a card identifier', async () => {
    const stored = await t.db.selectFrom('member_blocking_keys').select(t.db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBeGreaterThan(39 * 4);
    // Each member's normalised profile is stored too, so requests do not re-normalise candidates.
    const profiles = await t.db.selectFrom('members').leftJoin('member_match_profiles as p', 'p.member_uuid', 'members.id').select('p.profile').execute();
    expect(profiles.every((p) => p.profile !== null && decodeMatchProfile(p.profile, []) !== undefined)).toBe(true);
    const { candidates, oversizedBlockKinds } = await findCandidates(memberIndexCandidates(t.db, 1000), { given: 'Pat', family: 'Person', birthDate: '1974-12-25', identifiers: ['NOT-OURS-1'] });
    expect(candidates.map((c) => c.memberId)).toContain('55678');
    expect(oversizedBlockKinds).toEqual([]);
  });

  it("tells a personal card (the member's own number, no one's subscriber id) from a household's, and sees a card one slip away", async () => {
    const garcia = { family: 'Garcia', birthDate: '2015-06-14', postalCode: '73301' };
    const cardOf = async (given: string, identifiers: string[], fields: PersonFields = garcia) => {
      const { query, candidates } = await findCandidates(memberIndexCandidates(t.db, 1000), { ...fields, given, identifiers });
      return new Map(candidates.map((c) => [c.memberId, { hit: c.cardHit, personal: c.cardPersonal, level: compareCandidate(query, c).identifier }]));
    };
    // Olivia's own member number reaches her alone.
    const own = await cardOf('Olivia', ['10003']);
    expect(own.get('10003')).toEqual({ hit: true, personal: true, level: 'personal' });
    expect(own.get('10004')).toMatchObject({ hit: false, personal: false });
    // The family's subscriber id and its shared coverage id reach all four: a household card.
    for (const card of ['G100', 'CVG100']) {
      const household = await cardOf('Olivia', [card]);
      for (const id of ['10001', '10002', '10003', '10004']) expect(household.get(id), `${card} ${id}`).toEqual({ hit: true, personal: false, level: 'household' });
    }
    // Patricia is alone on her contract, but a subscriber id names the contract, not the person.
    const patricia = { family: 'Person', birthDate: '1974-12-25', postalCode: '62701' };
    expect((await cardOf('Patricia', ['DH10001235'], patricia)).get('55678')).toEqual({ hit: true, personal: false, level: 'household' });
    expect((await cardOf('Patricia', ['55678'], patricia)).get('55678')).toEqual({ hit: true, personal: true, level: 'personal' });
    // Her subscriber id with two digits swapped, or one mistyped, is near: the candidate carries its card values.
    expect((await cardOf('Patricia', ['DH10001253'], patricia)).get('55678')).toMatchObject({ hit: false, level: 'transposition' });
    expect((await cardOf('Patricia', ['DH10001285'], patricia)).get('55678')).toMatchObject({ hit: false, level: 'one-substitution' });
  });

  it('skips a block larger than the cap instead of scanning it, and says which kind', async () => {
    // The Garcia family shares address, phone and family name: with a cap of 1, their shared blocks are skipped.
    const { candidates, oversizedBlockKinds } = await findCandidates(memberIndexCandidates(t.db, 1), { given: 'Olivia', family: 'Garcia', birthDate: '2015-06-14', postalCode: '73301' });
    expect(oversizedBlockKinds.length).toBeGreaterThan(0);
    expect(oversizedBlockKinds.every((k) => /^[a-z]+$/.test(k))).toBe(true); // kinds, never values
    expect(candidates.length).toBeLessThanOrEqual(2);
  });

  it('leaves the keys of unchanged members alone on re-import', async () => {
    const before = await t.db.selectFrom('member_blocking_keys').select(['key', 'member_uuid']).orderBy('key').execute();
    await importRoster(t.db, projectFile('fixtures', 'demo-roster.csv'), { memberIdentifierSystem: 'urn:test:member' });
    const after = await t.db.selectFrom('member_blocking_keys').select(['key', 'member_uuid']).orderBy('key').execute();
    expect(after).toEqual(before);
  });

  it('re-keys a member whose demographics change', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mm-block-'));
    const roster = (await readFile(projectFile('fixtures', 'demo-roster.csv'), 'utf8')).split('\n');
    const header = roster[0]!;
    const patricia = roster.find((line) => line.startsWith('55678,'))!;
    await writeFile(path.join(dir, 'moved.csv'), `${header}\n${patricia.replace(',62701,', ',10001,')}\n`);
    const keysOf = () =>
      t.db.selectFrom('member_blocking_keys as b').innerJoin('members as m', 'm.id', 'b.member_uuid').select('b.key').where('m.member_id', '=', '55678').execute();
    const before = (await keysOf()).map((r) => r.key);
    const summary = await importRoster(t.db, path.join(dir, 'moved.csv'), { memberIdentifierSystem: 'urn:test:member' });
    expect(summary.updated).toBe(1);
    const after = (await keysOf()).map((r) => r.key);
    expect(after.filter((k) => k.startsWith('gz:') && k.endsWith(':10001'))).not.toHaveLength(0);
    expect(after.filter((k) => k.endsWith(':62701'))).toHaveLength(0);
    expect(after.length).toBe(before.length);
  });

  // Card values are kept beside the profile by triggers on `coverages` (migration 0023); the lookup reads that copy.
  const cardValuesOf = async (memberId: string) =>
    (await t.db.selectFrom('member_match_profiles').select('card_values').where('member_id', '=', memberId).executeTakeFirstOrThrow()).card_values.toSorted();
  const coverageValuesOf = async (memberId: string) =>
    (
      await sql<{ v: string }>`
        SELECT v FROM coverages c JOIN members m ON m.id = c.member_uuid CROSS JOIN LATERAL (VALUES (c.subscriber_id), (c.coverage_id)) ids(v)
        WHERE m.member_id = ${memberId} AND v IS NOT NULL`.execute(t.db)
    ).rows.map((r) => r.v).filter((v, i, all) => all.indexOf(v) === i).toSorted();

  it("an import writes a new member's card values with its profile, in the triggers' own form (no second write)", async () => {
    // With the triggers off, what the import itself wrote must already be what they would write: then, with them
    // on, a new member's coverages find its profile right and leave it alone.
    const fresh = await createTestDatabase();
    try {
      await sql`ALTER TABLE coverages DISABLE TRIGGER USER`.execute(fresh.db);
      await importRoster(fresh.db, projectFile('fixtures', 'demo-roster.csv'), { memberIdentifierSystem: 'urn:test:member' });
      // The triggers' form: distinct, in byte order.
      const differing = await sql<{ n: string }>`
        SELECT count(*) AS n FROM member_match_profiles p WHERE p.card_values IS DISTINCT FROM coalesce((
          SELECT array_agg(DISTINCT v COLLATE "C" ORDER BY v COLLATE "C")
          FROM coverages c CROSS JOIN LATERAL (VALUES (c.subscriber_id), (c.coverage_id)) ids(v)
          WHERE c.member_uuid = p.member_uuid AND v IS NOT NULL), '{}')`.execute(fresh.db);
      expect(Number(differing.rows[0]!.n)).toBe(0);
      const stored = await fresh.db.selectFrom('member_match_profiles').select('card_values').where('member_id', '=', '55678').executeTakeFirstOrThrow();
      expect(stored.card_values).toEqual(['DH10001235']);
    } finally {
      await fresh.drop();
    }
  });

  it('migration 0023 copies every member\'s card values beside its profile', async () => {
    const members = (await t.db.selectFrom('members').select('member_id').execute()).map((m) => m.member_id);
    const before = await Promise.all(members.map(coverageValuesOf));
    expect(before.some((values) => values.length > 0)).toBe(true);
    await dropProfileCardValues(t.db as unknown as Kysely<unknown>);
    await addProfileCardValues(t.db as unknown as Kysely<unknown>);
    expect(await Promise.all(members.map(cardValuesOf))).toEqual(before);
  });

  it('keeps the card values beside the profile when a coverage changes, is added or is removed', async () => {
    const patricia = { given: 'Patricia', family: 'Person', birthDate: '1974-12-25', postalCode: '62701' };
    const levelFor = async (card: string) => {
      const { query, candidates } = await findCandidates(memberIndexCandidates(t.db, 1000), { ...patricia, identifiers: [card] });
      const her = candidates.find((c) => c.memberId === '55678')!;
      return compareCandidate(query, her).identifier;
    };
    expect(await cardValuesOf('55678')).toEqual(await coverageValuesOf('55678'));
    expect(await cardValuesOf('55678')).toContain('DH10001235');
    // A re-import gives her coverage another subscriber id (its coverage id, the same value, stays): the copy follows.
    const dir = await mkdtemp(path.join(tmpdir(), 'mm-card-'));
    const roster = (await readFile(projectFile('fixtures', 'demo-roster.csv'), 'utf8')).split('\n');
    const line = roster.find((l) => l.startsWith('55678,'))!;
    expect(line).toContain('DH10001235');
    await writeFile(path.join(dir, 'renumbered.csv'), `${roster[0]}\n${line.replace('DH10001235', 'DH77001235')}\n`);
    await importRoster(t.db, path.join(dir, 'renumbered.csv'), { memberIdentifierSystem: 'urn:test:member' });
    expect(await cardValuesOf('55678')).toEqual(await coverageValuesOf('55678'));
    expect(await cardValuesOf('55678')).toEqual(['DH10001235', 'DH77001235']);
    expect(await levelFor('DH77001253')).toBe('transposition');
    // A second coverage inserted, then every coverage removed, behind the import's back.
    const [{ id }] = (await sql<{ id: string }>`SELECT id FROM members WHERE member_id = '55678'`.execute(t.db)).rows as [{ id: string }];
    await sql`INSERT INTO coverages (member_uuid, coverage_id, subscriber_id, content_hash) VALUES (${id}, 'CV-SECOND', 'SUB-SECOND', 'x')`.execute(t.db);
    expect(await cardValuesOf('55678')).toEqual(await coverageValuesOf('55678'));
    expect(await cardValuesOf('55678')).toEqual(expect.arrayContaining(['CV-SECOND', 'SUB-SECOND', 'DH77001235']));
    await sql`DELETE FROM coverages WHERE member_uuid = ${id}`.execute(t.db);
    expect(await cardValuesOf('55678')).toEqual([]);
  });
});

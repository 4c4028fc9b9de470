import { sql } from 'kysely';
import type { DbOrTx } from '../db/database.js';
import type { PersonFields } from '../matching/record.js';

/** At most this many members share card data; anything beyond is a data problem, not a family. */
const MAX_CARD_CANDIDATES = 200;

/**
 * Members reachable from the identifiers on a partner's card: our member id (as member_id or a stored
 * identifier), a coverage id, or a subscriber id. Identifier systems are not compared: partners copy our
 * ids under their own idea of our system URI, and demographics must corroborate every hit anyway.
 */
export async function findCardCandidateIds(db: DbOrTx, values: readonly string[]): Promise<string[]> {
  const distinct = [...new Set(values)];
  if (distinct.length === 0) return [];
  const rows = await sql<{ id: string }>`
    SELECT id FROM members WHERE member_id = ANY(${distinct}::text[])
    UNION SELECT member_uuid FROM member_identifiers WHERE value = ANY(${distinct}::text[])
    UNION SELECT member_uuid FROM coverages WHERE coverage_id = ANY(${distinct}::text[]) OR subscriber_id = ANY(${distinct}::text[])
    LIMIT ${MAX_CARD_CANDIDATES}`.execute(db);
  return rows.rows.map((r) => r.id);
}

export interface BlockLookup {
  memberUuids: string[];
  /** Keys whose block exceeded the cap and was skipped, never scanned. */
  oversizedKeys: string[];
}

/**
 * Members sharing at least one blocking key with the query. Each block's size is probed first with an
 * index-only count bounded at cap + 1; a block over the cap is skipped (and reported), so one very common
 * key (a popular birth date, a shared office phone) can never turn a request into a table scan.
 */
export async function findBlockCandidateIds(db: DbOrTx, keys: readonly string[], blockCap: number): Promise<BlockLookup> {
  if (keys.length === 0) return { memberUuids: [], oversizedKeys: [] };
  const sizes = await sql<{ key: string; n: number }>`
    SELECT k.key, (SELECT count(*)::int FROM (SELECT 1 FROM member_blocking_keys b WHERE b.key = k.key LIMIT ${blockCap + 1}) s) AS n
    FROM unnest(${[...keys]}::text[]) AS k(key)`.execute(db);
  const usable = sizes.rows.filter((r) => r.n > 0 && r.n <= blockCap).map((r) => r.key);
  const oversizedKeys = sizes.rows.filter((r) => r.n > blockCap).map((r) => r.key);
  if (usable.length === 0) return { memberUuids: [], oversizedKeys };
  const rows = await sql<{ member_uuid: string }>`
    SELECT DISTINCT member_uuid FROM member_blocking_keys WHERE key = ANY(${usable}::text[])`.execute(db);
  return { memberUuids: rows.rows.map((r) => r.member_uuid), oversizedKeys };
}

export interface CandidateMember {
  memberUuid: string;
  memberId: string;
  fields: PersonFields;
}

/** The demographics and every identifier (member id, subscriber ids, coverage ids) of the given members. */
export async function loadCandidateMembers(db: DbOrTx, memberUuids: readonly string[]): Promise<CandidateMember[]> {
  if (memberUuids.length === 0) return [];
  const rows = await sql<{
    id: string;
    member_id: string;
    given: string;
    middle: string | null;
    family: string;
    suffix: string | null;
    birth_date: string;
    gender: string | null;
    address_line: string | null;
    city: string | null;
    state: string | null;
    postal_code: string | null;
    phone: string | null;
    email: string | null;
    identifiers: string[] | null;
  }>`
    SELECT m.id, m.member_id, m.given, m.middle, m.family, m.suffix, m.birth_date, m.gender, m.address_line, m.city,
           m.state, m.postal_code, m.phone, m.email,
           (SELECT array_agg(DISTINCT v) FROM (
              SELECT c.subscriber_id AS v FROM coverages c WHERE c.member_uuid = m.id AND c.subscriber_id IS NOT NULL
              UNION ALL SELECT c.coverage_id FROM coverages c WHERE c.member_uuid = m.id
              UNION ALL SELECT mi.value FROM member_identifiers mi WHERE mi.member_uuid = m.id) ids) AS identifiers
    FROM members m WHERE m.id = ANY(${[...memberUuids]}::uuid[])`.execute(db);
  return rows.rows.map((r) => ({
    memberUuid: r.id,
    memberId: r.member_id,
    fields: {
      given: r.given,
      middle: r.middle ?? undefined,
      family: r.family,
      suffix: r.suffix ?? undefined,
      birthDate: r.birth_date,
      sex: r.gender ?? undefined,
      addressLine: r.address_line ?? undefined,
      city: r.city ?? undefined,
      state: r.state ?? undefined,
      postalCode: r.postal_code ?? undefined,
      phone: r.phone ?? undefined,
      email: r.email ?? undefined,
      identifiers: [r.member_id, ...(r.identifiers ?? [])],
    },
  }));
}

/**
 * Replaces the blocking keys of the given members (after an insert or an update of their demographics).
 * Newly inserted members have none to delete.
 */
export async function replaceBlockingKeys(
  db: DbOrTx,
  entries: readonly { memberUuid: string; keys: readonly string[]; isNew: boolean }[],
): Promise<void> {
  if (entries.length === 0) return;
  const existing = entries.filter((e) => !e.isNew).map((e) => e.memberUuid);
  if (existing.length > 0) await db.deleteFrom('member_blocking_keys').where('member_uuid', '=', sql<string>`any(${existing}::uuid[])`).execute();
  const uuids: string[] = [];
  const keys: string[] = [];
  for (const entry of entries) for (const key of entry.keys) { uuids.push(entry.memberUuid); keys.push(key); }
  if (keys.length === 0) return;
  await sql`INSERT INTO member_blocking_keys (key, member_uuid)
    SELECT * FROM unnest(${keys}::text[], ${uuids}::uuid[]) ON CONFLICT DO NOTHING`.execute(db);
}

export interface MemberSummary {
  id: string;
  memberId: string;
  given: string;
  middle: string | null;
  family: string;
  suffix: string | null;
  birthDate: string;
  gender: string | null;
}

export async function findMemberSummary(db: DbOrTx, memberUuid: string): Promise<MemberSummary | undefined> {
  const row = await db
    .selectFrom('members')
    .select(['id', 'member_id', 'given', 'middle', 'family', 'suffix', 'birth_date', 'gender'])
    .where('id', '=', memberUuid)
    .executeTakeFirst();
  return row && toSummary(row);
}

export async function findMemberSummaryByMemberId(db: DbOrTx, memberId: string): Promise<MemberSummary | undefined> {
  const row = await db
    .selectFrom('members')
    .select(['id', 'member_id', 'given', 'middle', 'family', 'suffix', 'birth_date', 'gender'])
    .where('member_id', '=', memberId)
    .executeTakeFirst();
  return row && toSummary(row);
}

function toSummary(row: {
  id: string;
  member_id: string;
  given: string;
  middle: string | null;
  family: string;
  suffix: string | null;
  birth_date: string;
  gender: string | null;
}): MemberSummary {
  return {
    id: row.id,
    memberId: row.member_id,
    given: row.given,
    middle: row.middle,
    family: row.family,
    suffix: row.suffix,
    birthDate: row.birth_date,
    gender: row.gender,
  };
}

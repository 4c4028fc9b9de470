import { sql } from 'kysely';
import { PREPARED_STATEMENT, type DbOrTx } from '../db/database.js';
import type { CandidateQuery } from '../matching/engine.js';
import type { PersonFields } from '../matching/record.js';
import { STORED_PROFILE_PREFIX } from '../matching/profile.js';

/** At most this many members share card data; anything beyond is a data problem, not a family. */
const MAX_CARD_CANDIDATES = 200;

export interface CandidateMember {
  memberUuid: string;
  memberId: string;
  fields: PersonFields;
  /** The match profile stored at import (see matching/profile.ts `encodeMatchProfile`), if any. */
  profile: string | null;
}

export interface CandidateLookup {
  /** `cardHit`: the card's values reached the member; `cardPersonal`: one is its own member number, held by no one else. */
  members: (CandidateMember & { cardHit: boolean; cardPersonal: boolean })[];
  /** Keys whose block exceeded the cap and was skipped, never scanned. */
  oversizedKeys: string[];
}

interface CandidateRow {
  id: string | null;
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
  profile: string | null;
  card_hit: boolean;
  oversized: string[] | null;
}

/**
 * The columns a candidate is scored on, read from `member_match_profiles` (`p`) alone: its stored match profile,
 * and its raw demographics from `members` only when that profile is of another version (then they are normalised
 * afresh). Shipping and parsing twelve columns per candidate that the scorer never reads cost more than the
 * scoring; reading the wide member row at all cost more than the narrow profile (migration 0021).
 */
const demographicColumns = sql`
  p.member_uuid AS id, p.member_id, p.profile,
  CASE WHEN starts_with(p.profile, ${STORED_PROFILE_PREFIX}) THEN NULL ELSE (SELECT jsonb_build_object(
    'given', m.given, 'middle', m.middle, 'family', m.family, 'suffix', m.suffix, 'birth_date', m.birth_date,
    'gender', m.gender, 'address_line', m.address_line, 'city', m.city, 'state', m.state,
    'postal_code', m.postal_code, 'phone', m.phone, 'email', m.email) FROM members m WHERE m.id = p.member_uuid) END AS stale_fields`;

/** The same, with every identifier the member carries (member, subscriber, coverage ids). */
const candidateColumns = sql`
  m.id, m.member_id, m.given, m.middle, m.family, m.suffix, m.birth_date, m.gender, m.address_line, m.city,
  m.state, m.postal_code, m.phone, m.email, (SELECT p.profile FROM member_match_profiles p WHERE p.member_uuid = m.id) AS profile,
  (SELECT array_agg(DISTINCT v) FROM (
     SELECT c.subscriber_id AS v FROM coverages c WHERE c.member_uuid = m.id AND c.subscriber_id IS NOT NULL
     UNION ALL SELECT c.coverage_id FROM coverages c WHERE c.member_uuid = m.id
     UNION ALL SELECT mi.value FROM member_identifiers mi WHERE mi.member_uuid = m.id) ids) AS identifiers`;

/**
 * Every card value a candidate holds (subscriber ids and coverage ids; its member number is read anyway), so a
 * card one slip away can be recognised: kept beside the profile by triggers on `coverages` (migration 0023), so it
 * costs no second read a candidate. Only sent when some query of the batch carries a card: requests without one
 * pay nothing for it. Two statement texts, each prepared once.
 */
function cardValuesColumn(wanted: boolean) {
  return wanted ? sql`p.card_values` : sql`NULL::text[] AS card_values`;
}

/**
 * Candidate retrieval in one round trip, for one query or a batch of them (a batch chunk asks for all its
 * rows at once): the members sharing a blocking key with each query, united with the members its card
 * identifiers reach (our member id, a coverage id or a subscriber id; identifier systems are not compared,
 * because partners copy our ids under their own idea of our system URI, and demographics must corroborate
 * every card hit anyway). Returns one lookup per query, in order.
 *
 * Each block is read with an index-only scan that stops at cap + 1 members; a block over the cap is skipped
 * (and reported), so one very common key (a popular birth date, a shared office phone) can never turn a
 * request into a table scan, and a block is read once however many of the batch's queries share it. At most MAX_CARD_CANDIDATES members per query come from card data.
 * A member several queries share is read once.
 *
 * Whether the card agrees exactly with a candidate is whether the card lookup reached it (`cardHit`). It is
 * the person's own card (`cardPersonal`) when a value reached it as its member number (our member id or
 * another member identifier), reached no other member, and is no coverage's subscriber id: a subscriber id
 * names a contract, which a relative who is not our member may present (half the plans print the
 * subscriber's member number as the subscriber id, and a household whose other members left the index looks
 * like one person). Candidates carry their card values only when a query has a card (cardValuesColumn).
 *
 * The same statement reads which match model is active, in the same snapshot as the candidates: the model that
 * scores them is the one active when they were read (a model activated, or re-saved with an import's term
 * frequencies, just before is seen at once), and no request spends a round trip of its own asking.
 */
export async function findCandidateMembersBatch(
  db: DbOrTx,
  queries: readonly CandidateQuery[],
  blockCap: number,
): Promise<{ lookups: CandidateLookup[]; activeModelVersion: string | undefined }> {
  const keyQuery: number[] = [];
  const keyValue: string[] = [];
  const cardQuery: number[] = [];
  const cardValue: string[] = [];
  queries.forEach((q, i) => {
    for (const key of new Set(q.blockKeys)) {
      keyQuery.push(i);
      keyValue.push(key);
    }
    for (const value of new Set(q.cardValues)) {
      cardQuery.push(i);
      cardValue.push(value);
    }
  });
  // Every join into the big tables is LATERAL, so each is an index probe per key or per member: left to
  // itself the planner may hash-join a whole table on a mis-estimated block size.
  // Prepared (PREPARED_STATEMENT): planning this statement cost more than running it (docs/benchmarks.md).
  const rows = await sql<ScoringRow & { q: number; active_model: string | null }>`${sql.raw(PREPARED_STATEMENT)}
    WITH wanted AS (SELECT * FROM unnest(${keyQuery}::int[], ${keyValue}::text[]) AS w(q, key)),
    blocks AS MATERIALIZED (
      SELECT k.key, ARRAY(SELECT member_uuid FROM member_blocking_keys b WHERE b.key = k.key LIMIT ${blockCap + 1}) AS members
      FROM (SELECT DISTINCT key FROM wanted) k
    ),
    cards AS (SELECT * FROM unnest(${cardQuery}::int[], ${cardValue}::text[]) AS c(q, value)),
    card AS (
      SELECT q, member_uuid, bool_or(personal) AS personal FROM (
        SELECT q, member_uuid, dense_rank() OVER (PARTITION BY q ORDER BY member_uuid) AS r,
          by_number AND count(*) OVER per_value = 1 AND NOT bool_or(by_subscriber) OVER per_value AS personal
        FROM (
          SELECT c.q, c.value, x.member_uuid, bool_or(x.by_number) AS by_number, bool_or(x.by_subscriber) AS by_subscriber
          FROM cards c CROSS JOIN LATERAL (
            SELECT id AS member_uuid, true AS by_number, false AS by_subscriber FROM members WHERE member_id = c.value
            UNION ALL SELECT member_uuid, true, false FROM member_identifiers WHERE value = c.value
            UNION ALL SELECT member_uuid, false, false FROM coverages WHERE coverage_id = c.value
            UNION ALL SELECT member_uuid, false, true FROM coverages WHERE subscriber_id = c.value) x
          GROUP BY c.q, c.value, x.member_uuid) hits
        WINDOW per_value AS (PARTITION BY q, value)) numbered
      WHERE r <= ${MAX_CARD_CANDIDATES}
      GROUP BY q, member_uuid
    ),
    picked AS MATERIALIZED (
      SELECT q, member_uuid, bool_or(card_hit) AS card_hit, bool_or(card_personal) AS card_personal FROM (
        SELECT q, member_uuid, true AS card_hit, personal AS card_personal FROM card
        UNION ALL
        SELECT w.q, unnest(b.members), false, false FROM wanted w JOIN blocks b ON b.key = w.key AND cardinality(b.members) <= ${blockCap}
      ) u GROUP BY q, member_uuid
    ),
    fetched AS MATERIALIZED (
      SELECT m.* FROM (SELECT DISTINCT member_uuid FROM picked) d
      CROSS JOIN LATERAL (SELECT ${demographicColumns}, ${cardValuesColumn(cardValue.length > 0)} FROM member_match_profiles p WHERE p.member_uuid = d.member_uuid) m
    )
    SELECT p.q, f.*, p.card_hit, p.card_personal, NULL::text[] AS oversized, NULL::text AS active_model FROM picked p JOIN fetched f ON f.id = p.member_uuid
    UNION ALL
    SELECT w.q, NULL, NULL, NULL, NULL, NULL, false, false, array_agg(w.key), NULL FROM wanted w JOIN blocks b ON b.key = w.key AND cardinality(b.members) > ${blockCap} GROUP BY w.q
    UNION ALL
    SELECT -1, NULL, NULL, NULL, NULL, NULL, false, false, NULL, (SELECT version FROM match_models WHERE active)`.execute(db);
  const lookups: CandidateLookup[] = queries.map(() => ({ members: [], oversizedKeys: [] }));
  let activeModelVersion: string | undefined;
  for (const row of rows.rows) {
    if (row.q === -1) activeModelVersion = row.active_model ?? undefined;
    else if (row.id === null) lookups[row.q]!.oversizedKeys = row.oversized ?? [];
    else lookups[row.q]!.members.push({ ...toScoringCandidate(row), cardHit: row.card_hit, cardPersonal: row.card_personal });
  }
  return { lookups, activeModelVersion };
}

/** The demographics and identifiers of the given members (model training samples them). */
export async function loadCandidateMembers(db: DbOrTx, memberUuids: readonly string[]): Promise<CandidateMember[]> {
  if (memberUuids.length === 0) return [];
  const rows = await sql<CandidateRow>`
    SELECT ${candidateColumns}, false AS card_hit, NULL::text[] AS oversized
    FROM members m WHERE m.id = ANY(${[...memberUuids]}::uuid[])`.execute(db);
  return rows.rows.map(toCandidate);
}

interface ScoringRow {
  id: string | null;
  member_id: string;
  profile: string | null;
  stale_fields: Omit<CandidateRow, 'id' | 'member_id' | 'profile' | 'identifiers' | 'card_hit' | 'oversized'> | null;
  card_values: string[] | null;
  card_hit: boolean;
  card_personal: boolean;
  oversized: string[] | null;
}

function toScoringCandidate(r: ScoringRow): CandidateMember {
  if (r.stale_fields) return toCandidate({ ...r.stale_fields, id: r.id, member_id: r.member_id, profile: r.profile, identifiers: r.card_values, card_hit: r.card_hit, oversized: null });
  return { memberUuid: r.id!, memberId: r.member_id, profile: r.profile, fields: { identifiers: [r.member_id, ...(r.card_values ?? [])] } };
}

function toCandidate(r: CandidateRow): CandidateMember {
  return {
    memberUuid: r.id!,
    memberId: r.member_id,
    profile: r.profile,
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
  };
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

/** Member identifiers by internal reference (members.id), for members that still exist. */
export async function findMemberIds(db: DbOrTx, memberUuids: readonly string[]): Promise<Map<string, string>> {
  if (memberUuids.length === 0) return new Map();
  const rows = await db.selectFrom('members').select(['id', 'member_id']).where('id', '=', sql<string>`any(${[...new Set(memberUuids)]}::uuid[])`).execute();
  return new Map(rows.map((r) => [r.id, r.member_id]));
}

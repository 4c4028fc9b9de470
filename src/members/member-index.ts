import type { DbOrTx } from '../db/database.js';
import type { CardCandidate } from '../matching/deterministic.js';

/** At most this many members share card data; anything beyond is a data problem, not a family. */
const MAX_CARD_CANDIDATES = 200;

/**
 * Members reachable from the identifiers on a partner's card: our member id (as member_id or a stored
 * identifier), a coverage id, or a subscriber id. Identifier systems are not compared: partners copy our
 * ids under their own idea of our system URI, and demographics confirm every hit anyway.
 */
export async function findCardCandidates(
  db: DbOrTx,
  cardIdentifiers: string[],
  subscriberId: string | undefined,
): Promise<CardCandidate[]> {
  const values = [...new Set([...cardIdentifiers, ...(subscriberId ? [subscriberId] : [])])];
  if (values.length === 0) return [];
  const rows = await db
    .selectFrom('members as m')
    .select(['m.id', 'm.member_id', 'm.family_key', 'm.given_key', 'm.birth_date', 'm.gender'])
    .where((eb) =>
      eb.or([
        eb('m.member_id', 'in', values),
        eb.exists(
          eb
            .selectFrom('member_identifiers as mi')
            .select('mi.member_uuid')
            .whereRef('mi.member_uuid', '=', 'm.id')
            .where('mi.value', 'in', values),
        ),
        eb.exists(
          eb
            .selectFrom('coverages as c')
            .select('c.member_uuid')
            .whereRef('c.member_uuid', '=', 'm.id')
            .where((cb) => cb.or([cb('c.coverage_id', 'in', values), cb('c.subscriber_id', 'in', values)])),
        ),
      ]),
    )
    .limit(MAX_CARD_CANDIDATES)
    .execute();
  return rows.map((r) => ({
    memberUuid: r.id,
    memberId: r.member_id,
    familyKey: r.family_key,
    givenKey: r.given_key,
    birthDate: r.birth_date,
    gender: r.gender,
  }));
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

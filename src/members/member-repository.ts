import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { DbOrTx } from '../db/database.js';
import { BLOCKING_KEYS_VERSION } from '../matching/blocking.js';
import { encodeMatchProfile, matchProfile, MATCH_PROFILE_VERSION, type MatchProfile } from '../matching/profile.js';
import { givenNameKey, nameKey } from '../matching/normalize.js';
import type { PersonFields } from '../matching/record.js';
import { memoisedPerObject } from '../shared/memo.js';

/**
 * Writes of the member index used by roster import. Every write is an idempotent multi-row upsert keyed on
 * the business key (`members.member_id`, `coverages (member_uuid, coverage_id)`, `member_identifiers
 * (system, value)`), and an unchanged row (same content hash) is never rewritten: its tuple, `ctid` and
 * `updated_at` stay as they were.
 */

/** One member's demographics, normalised (trimmed, empty → null, gender lower case, state upper case). */
export interface MemberRecord {
  memberId: string;
  /** `Patient.id` of an NDJSON import; null from CSV (a CSV import never clears a stored one). */
  sourceResourceId: string | null;
  given: string;
  middle: string | null;
  family: string;
  suffix: string | null;
  /** `YYYY-MM-DD`. */
  birthDate: string;
  gender: string | null;
  addressLine: string | null;
  city: string | null;
  state: string | null;
  postalCode: string | null;
  phone: string | null;
  email: string | null;
}

/** One coverage of a member, normalised. */
export interface CoverageRecord {
  coverageId: string;
  subscriberId: string | null;
  relationship: string | null;
  groupId: string | null;
  planId: string | null;
  periodStart: string | null;
  periodEnd: string | null;
}

export type UpsertOutcome = 'inserted' | 'updated' | 'unchanged';

function sha256(parts: readonly (string | null)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * sha256 of the canonical member content: the stored columns in a fixed order, plus the derived name keys so
 * a change to the normalisation rules re-keys every member on the next import. The member id is the upsert
 * key and `source_resource_id` is compared separately (CSV rows have none), so neither is part of the hash.
 */
/** A roster record as the matcher takes it (no identifiers: callers add those they have). */
export function memberPersonFields(m: MemberRecord): PersonFields {
  return {
    given: m.given,
    middle: m.middle ?? undefined,
    family: m.family,
    suffix: m.suffix ?? undefined,
    birthDate: m.birthDate,
    sex: m.gender ?? undefined,
    addressLine: m.addressLine ?? undefined,
    city: m.city ?? undefined,
    state: m.state ?? undefined,
    postalCode: m.postalCode ?? undefined,
    phone: m.phone ?? undefined,
    email: m.email ?? undefined,
  };
}

/** A member's match profile (memoised per record: import computes it for the row and for its blocking keys). */
export const memberMatchProfile: (m: MemberRecord) => MatchProfile = memoisedPerObject((m) => matchProfile(memberPersonFields(m)));

/** A member's match profile as member_match_profiles stores it (memoised like the profile). */
export const memberStoredProfile: (m: MemberRecord) => string = memoisedPerObject((m) => encodeMatchProfile(memberMatchProfile(m)));

/** A member's family and given name keys (memoised per record: import needs them for the hash and the columns). */
const memberNameKeys = memoisedPerObject((m: MemberRecord) => ({ family: nameKey(m.family), given: givenNameKey(m.given) }));

/**
 * The columns of `members` an import writes, each with its Postgres type and its value for a record: the upsert
 * sends one array per column and names the columns from this one list, so a column cannot drift out of order.
 */
const MEMBER_COLUMNS: readonly { name: string; type: 'text' | 'date'; value: (m: MemberRecord) => string | null | undefined }[] = [
  { name: 'member_id', type: 'text', value: (m) => m.memberId },
  { name: 'source_resource_id', type: 'text', value: (m) => m.sourceResourceId },
  { name: 'given', type: 'text', value: (m) => m.given },
  { name: 'middle', type: 'text', value: (m) => m.middle },
  { name: 'family', type: 'text', value: (m) => m.family },
  { name: 'suffix', type: 'text', value: (m) => m.suffix },
  { name: 'birth_date', type: 'date', value: (m) => m.birthDate },
  { name: 'gender', type: 'text', value: (m) => m.gender },
  { name: 'address_line', type: 'text', value: (m) => m.addressLine },
  { name: 'city', type: 'text', value: (m) => m.city },
  { name: 'state', type: 'text', value: (m) => m.state },
  { name: 'postal_code', type: 'text', value: (m) => m.postalCode },
  { name: 'phone', type: 'text', value: (m) => m.phone },
  { name: 'email', type: 'text', value: (m) => m.email },
  { name: 'family_key', type: 'text', value: (m) => memberNameKeys(m).family },
  { name: 'given_key', type: 'text', value: (m) => memberNameKeys(m).given },
  { name: 'content_hash', type: 'text', value: (m) => memberContentHash(m) },
];

/** The content hash (memoised per record: import plans with it, then writes it). */
export const memberContentHash: (m: MemberRecord) => string = memoisedPerObject(computeMemberContentHash);

function computeMemberContentHash(m: MemberRecord): string {
  const keys = memberNameKeys(m);
  return sha256([
    // Bumping the blocking-key version re-keys every member on the next import.
    `member:v1:blocking:${BLOCKING_KEYS_VERSION}:profile:${MATCH_PROFILE_VERSION}`,
    m.given,
    m.middle,
    m.family,
    m.suffix,
    m.birthDate,
    m.gender,
    m.addressLine,
    m.city,
    m.state,
    m.postalCode,
    m.phone,
    m.email,
    keys.family,
    keys.given,
  ]);
}

/** sha256 of the canonical coverage content (memoised per record: import plans with it, then writes it). */
export const coverageContentHash: (c: CoverageRecord) => string = memoisedPerObject(computeCoverageContentHash);

function computeCoverageContentHash(c: CoverageRecord): string {
  return sha256([
    'coverage:v1',
    c.coverageId,
    c.subscriberId,
    c.relationship,
    c.groupId,
    c.planId,
    c.periodStart,
    c.periodEnd,
  ]);
}

export interface MemberUpsertResult {
  /** `members.id`. */
  id: string;
  outcome: UpsertOutcome;
}

/**
 * Upserts members on `member_id` in one statement. The member ids must be distinct (Postgres refuses to
 * update one row twice in a statement). Returns one result per input, in input order.
 */
export async function upsertMembers(
  db: DbOrTx,
  members: readonly MemberRecord[],
  /** Each member's card values as far as the caller knows them (a roster row's coverage), by member id. */
  knownCardValues: ReadonlyMap<string, readonly string[]> = new Map(),
): Promise<MemberUpsertResult[]> {
  if (members.length === 0) return [];
  // One array parameter per column, unnested server-side: 18 parameters instead of 18 per row, which keeps
  // both query compilation here and parsing in Postgres cheap for 500-row batches. The profile of every member
  // written goes to member_match_profiles in the same statement, so no member is ever without one. A new
  // member's profile carries the card values the caller knows, in the form the triggers on `coverages` keep them
  // (migration 0023: distinct, in byte order): when its coverages follow, the triggers find them right and do not
  // write the profile again. They stay the truth: a member updated here keeps its stored values.
  const names = MEMBER_COLUMNS.map((c) => c.name);
  const knownCards = { memberIds: [] as string[], values: [] as string[] };
  for (const m of members) {
    for (const value of knownCardValues.get(m.memberId) ?? []) {
      knownCards.memberIds.push(m.memberId);
      knownCards.values.push(value);
    }
  }
  const updated = names.filter((c) => c !== 'member_id' && c !== 'source_resource_id');
  const written = await sql<{ id: string; member_id: string; inserted: boolean }>`
    WITH input AS (
      SELECT * FROM unnest(
        ${sql.join(MEMBER_COLUMNS.map((c) => sql`${members.map(c.value)}::${sql.raw(c.type)}[]`))},
        ${members.map(memberStoredProfile)}::text[]
      ) AS i(${sql.join([...names, 'profile'].map((c) => sql.ref(c)))})
    ),
    known_cards AS (
      SELECT k.member_id, array_agg(DISTINCT k.v COLLATE "C" ORDER BY k.v COLLATE "C") AS card_values
      FROM unnest(${knownCards.memberIds}::text[], ${knownCards.values}::text[]) AS k(member_id, v) GROUP BY k.member_id
    ),
    written AS (
      INSERT INTO members AS m (${sql.join(names.map((c) => sql.ref(c)))})
      SELECT ${sql.join(names.map((c) => sql.ref(`input.${c}`)))} FROM input
      ON CONFLICT (member_id) DO UPDATE SET
        source_resource_id = coalesce(excluded.source_resource_id, m.source_resource_id),
        ${sql.join(updated.map((c) => sql`${sql.ref(c)} = ${sql.ref(`excluded.${c}`)}`))},
        updated_at = now()
      WHERE m.content_hash IS DISTINCT FROM excluded.content_hash
        OR (excluded.source_resource_id IS NOT NULL AND m.source_resource_id IS DISTINCT FROM excluded.source_resource_id)
      RETURNING m.id, m.member_id, (xmax = 0) AS inserted
    ),
    profiles AS (
      INSERT INTO member_match_profiles (member_uuid, member_id, profile, card_values)
      SELECT w.id, w.member_id, input.profile, coalesce(known_cards.card_values, '{}')
      FROM written w JOIN input ON input.member_id = w.member_id LEFT JOIN known_cards ON known_cards.member_id = w.member_id
      ON CONFLICT (member_uuid) DO UPDATE SET profile = excluded.profile
    )
    SELECT id, member_id, inserted FROM written`.execute(db);

  const byMemberId = new Map<string, MemberUpsertResult>();
  for (const row of written.rows) byMemberId.set(row.member_id, { id: row.id, outcome: row.inserted ? 'inserted' : 'updated' });

  // Rows the WHERE clause left alone are not returned: they are the unchanged ones.
  const untouched = members.filter((m) => !byMemberId.has(m.memberId)).map((m) => m.memberId);
  if (untouched.length > 0) {
    const rows = await db.selectFrom('members').select(['id', 'member_id']).where('member_id', '=', sql<string>`any(${untouched}::text[])`).execute();
    for (const row of rows) byMemberId.set(row.member_id, { id: row.id, outcome: 'unchanged' });
  }

  return members.map((m) => {
    const result = byMemberId.get(m.memberId);
    if (!result) throw new Error('member upsert returned no row'); // not reachable inside one transaction
    return result;
  });
}

export interface MemberIdentifierRow {
  memberUuid: string;
  system: string;
  value: string;
  typeCode: string | null;
}

/** Upserts identifiers on `(system, value)`, distinct in one call; an unchanged row is not rewritten. */
export async function upsertMemberIdentifiers(db: DbOrTx, identifiers: readonly MemberIdentifierRow[]): Promise<void> {
  if (identifiers.length === 0) return;
  await db
    .insertInto('member_identifiers')
    .columns(['member_uuid', 'system', 'value', 'type_code'])
    .expression(
      sql`SELECT * FROM unnest(
        ${identifiers.map((i) => i.memberUuid)}::uuid[],
        ${identifiers.map((i) => i.system)}::text[],
        ${identifiers.map((i) => i.value)}::text[],
        ${identifiers.map((i) => i.typeCode)}::text[]
      )`,
    )
    .onConflict((oc) =>
      oc
        .columns(['system', 'value'])
        .doUpdateSet((eb) => ({ member_uuid: eb.ref('excluded.member_uuid'), type_code: eb.ref('excluded.type_code') }))
        .where((eb) =>
          eb.or([
            eb('member_identifiers.member_uuid', 'is distinct from', eb.ref('excluded.member_uuid')),
            eb('member_identifiers.type_code', 'is distinct from', eb.ref('excluded.type_code')),
          ]),
        ),
    )
    .execute();
}

export interface CoverageUpsertRow {
  memberUuid: string;
  coverage: CoverageRecord;
}

/**
 * Upserts coverages on `(member_uuid, coverage_id)`, distinct within one call. Returns one outcome per
 * input, in input order.
 */
export async function upsertCoverages(db: DbOrTx, coverages: readonly CoverageUpsertRow[]): Promise<UpsertOutcome[]> {
  if (coverages.length === 0) return [];
  const column = <T>(pick: (c: CoverageUpsertRow) => T) => coverages.map(pick);
  const written = await db
    .insertInto('coverages')
    .columns([
      'member_uuid',
      'coverage_id',
      'subscriber_id',
      'relationship',
      'group_id',
      'plan_id',
      'period_start',
      'period_end',
      'content_hash',
    ])
    .expression(
      sql`SELECT * FROM unnest(
        ${column((c) => c.memberUuid)}::uuid[],
        ${column((c) => c.coverage.coverageId)}::text[],
        ${column((c) => c.coverage.subscriberId)}::text[],
        ${column((c) => c.coverage.relationship)}::text[],
        ${column((c) => c.coverage.groupId)}::text[],
        ${column((c) => c.coverage.planId)}::text[],
        ${column((c) => c.coverage.periodStart)}::date[],
        ${column((c) => c.coverage.periodEnd)}::date[],
        ${column((c) => coverageContentHash(c.coverage))}::text[]
      )`,
    )
    .onConflict((oc) =>
      oc
        .columns(['member_uuid', 'coverage_id'])
        .doUpdateSet((eb) => ({
          subscriber_id: eb.ref('excluded.subscriber_id'),
          relationship: eb.ref('excluded.relationship'),
          group_id: eb.ref('excluded.group_id'),
          plan_id: eb.ref('excluded.plan_id'),
          period_start: eb.ref('excluded.period_start'),
          period_end: eb.ref('excluded.period_end'),
          content_hash: eb.ref('excluded.content_hash'),
          updated_at: sql<Date>`now()`,
        }))
        .where((eb) => eb('coverages.content_hash', 'is distinct from', eb.ref('excluded.content_hash'))),
    )
    .returning(['member_uuid', 'coverage_id', sql<boolean>`(xmax = 0)`.as('inserted')])
    .execute();
  const outcomes = new Map<string, UpsertOutcome>();
  for (const row of written) outcomes.set(coverageKey(row.member_uuid, row.coverage_id), row.inserted ? 'inserted' : 'updated');
  return coverages.map((c) => outcomes.get(coverageKey(c.memberUuid, c.coverage.coverageId)) ?? 'unchanged');
}

export function coverageKey(memberUuid: string, coverageId: string): string {
  return `${memberUuid}\u0000${coverageId}`;
}

export interface SourceResourceOwner {
  id: string;
  memberId: string;
  sourceResourceId: string;
}

/** Members by the FHIR `Patient.id` they were imported from. */
export async function findMembersBySourceResourceIds(
  db: DbOrTx,
  sourceResourceIds: readonly string[],
): Promise<SourceResourceOwner[]> {
  if (sourceResourceIds.length === 0) return [];
  const rows = await db
    .selectFrom('members')
    .select(['id', 'member_id', 'source_resource_id'])
    .where('source_resource_id', 'in', [...new Set(sourceResourceIds)])
    .execute();
  return rows.map((r) => ({ id: r.id, memberId: r.member_id, sourceResourceId: r.source_resource_id ?? '' }));
}

/** A deterministic sample of member references: the same seed picks the same members (model training). */
export async function sampleMemberIds(db: DbOrTx, seed: number, size: number): Promise<string[]> {
  const rows = await sql<{ id: string }>`SELECT id FROM members ORDER BY md5(member_id || ${String(seed)}) LIMIT ${size}`.execute(db);
  return rows.rows.map((r) => r.id);
}

export async function countMembers(db: DbOrTx): Promise<number> {
  const row = await db.selectFrom('members').select(db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

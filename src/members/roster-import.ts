/** Roster import: writes a roster file's members and coverages into the member index (format and outcomes: docs/roster-format.md). */
import { sql } from 'kysely';
import { memberBlockingKeys } from '../matching/blocking.js';
import { replaceBlockingKeys } from './member-index.js';
import { buildDeferredIndexes, deferIndexes, insertNewBlockingKeys } from './first-import.js';
import { recordRosterOptOuts } from '../consent/opt-out-registry.js';
import { createReadStream } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { memoisedPerObject } from '../shared/memo.js';
import type { Db, Tx } from '../db/database.js';
import {
  coverageContentHash,
  coverageKey,
  findMembersBySourceResourceIds,
  memberContentHash,
  memberMatchProfile,
  memberStoredProfile,
  upsertCoverages,
  upsertMemberIdentifiers,
  upsertMembers,
  type CoverageRecord,
  type MemberRecord,
  type MemberUpsertResult,
  type UpsertOutcome,
} from './member-repository.js';
import { RosterFileError, type ImportSummary } from './roster-format/errors.js';
import { readRosterItems, rosterFileFormat, type RosterFormat, type RosterItem } from './roster-format/items.js';

export interface ImportOptions {
  /** System of the member identifier stored for each member_id (and looked for on NDJSON Patients). */
  memberIdentifierSystem: string;
  /** Rows per transaction; default 500. */
  batchSize?: number;
  /** Called after each committed batch with a snapshot of the running summary. */
  onProgress?: (summary: ImportSummary) => void;
  /** Called in each batch's transaction with the member ids the batch carried (written or unchanged). */
  onMembersSeen?: (trx: Tx, memberIds: string[]) => Promise<void>;
}

export const DEFAULT_BATCH_SIZE = 500;
/** Rows per transaction of a first import into an empty index (two batches are held at a time). */
export const FIRST_IMPORT_BATCH_SIZE = 5_000;
export const MAX_REPORTED_ERRORS = 1000;
/** The type code of the member identifier written for each member (v2-0203 "Member Number"). */
const MEMBER_IDENTIFIER_TYPE = 'MB';
const BENEFICIARY_NOT_FOUND = 'beneficiary Patient not found; Patient lines must precede their Coverage';

/** Imports a roster file (formats: docs/roster-format.md). */
export async function importRoster(db: Db, filePath: string, options: ImportOptions): Promise<ImportSummary> {
  const { format, gzip } = rosterFileFormat(filePath);
  const file = createReadStream(filePath);
  if (!gzip) return importRosterStream(db, file, format, options);
  const gunzip = createGunzip();
  // pipeline forwards errors and tears both streams down when the reader stops early.
  pipeline(file, gunzip, () => undefined);
  try {
    return await importRosterStream(db, gunzip, format, options);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new RosterFileError('the file is not valid gzip data', undefined, { cause: error });
    }
    throw error;
  }
}

function snapshot(summary: ImportSummary): ImportSummary {
  return { ...summary, errors: [...summary.errors] };
}

/**
 * Imports a roster from a stream (already decompressed). Rows are written in batches, one transaction
 * each; rejected rows are counted in line order with the batch they arrived in.
 */
export async function importRosterStream(
  db: Db,
  input: Readable,
  format: RosterFormat,
  options: ImportOptions,
): Promise<ImportSummary> {
  if (options.batchSize !== undefined && (!Number.isInteger(options.batchSize) || options.batchSize < 1)) {
    throw new RangeError('batchSize must be a positive integer');
  }
  const summary: ImportSummary = { rows: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0, errors: [] };
  let pending: RosterItem[] = [];
  // Builds what an import that stopped half-way left deferred; then, into an empty index, defers the secondary
  // indexes until the rows are in (src/members/first-import.ts). A role that may not build them goes on without.
  // The input is not read until then: an error it meets meanwhile (a missing file) is held and thrown after.
  let inputError: unknown;
  const holdError = (error: unknown) => {
    inputError ??= error;
  };
  input.on('error', holdError);
  await buildDeferredIndexes(db).catch((error: unknown) => {
    if ((error as { code?: string }).code !== '42501') throw error;
  });
  const firstImport: FirstImportState | undefined = (await deferIndexes(db)) ? { laterKeys: new Map() } : undefined;
  // A first import writes into tables without secondary indexes, where each statement's cost is mostly per round
  // trip, not per row: ten times fewer, larger batches took a 100 k import from 21 to 16 s (docs/benchmarks.md).
  const batchSize = options.batchSize ?? (firstImport ? FIRST_IMPORT_BATCH_SIZE : DEFAULT_BATCH_SIZE);
  input.off('error', holdError);
  if (inputError !== undefined) {
    if (firstImport) await finishFirstImport(db, firstImport);
    throw inputError;
  }

  const reject = (line: number, reason: string) => {
    summary.rejected++;
    if (summary.errors.length < MAX_REPORTED_ERRORS) summary.errors.push({ line, reason });
  };

  /** Writes one batch and counts its outcomes. */
  const write = async (items: RosterItem[]) => {
    const writable = items.filter((item) => item.kind !== 'rejected');
    const outcomes =
      writable.length === 0
        ? []
        : await db.transaction().execute(async (trx) => {
            const outcomes = await writeBatch(trx, writable, options.memberIdentifierSystem, firstImport);
            const seen = writable.flatMap((item, i) => (item.kind !== 'coverage' && typeof outcomes[i] === 'string' ? [item.member.memberId] : []));
            if (options.onMembersSeen && seen.length > 0) await options.onMembersSeen(trx, [...new Set(seen)]);
            return outcomes;
          });
    summary.rows += items.length;
    let next = 0;
    for (const item of items) {
      if (item.kind === 'rejected') {
        reject(item.line, item.reason);
        continue;
      }
      const outcome = outcomes[next++];
      if (outcome === undefined) throw new Error('batch returned too few outcomes');
      if (typeof outcome === 'string') summary[outcome]++;
      else reject(item.line, outcome.rejected);
    }
    options.onProgress?.(snapshot(summary));
  };

  // One batch is written while the next is parsed: at most two batches are held, and batches commit in order.
  let inFlight: Promise<void> = Promise.resolve();
  const flush = async () => {
    const items = pending;
    pending = [];
    // The batch's CPU work (profiles, hashes, blocking keys) is done now, while Postgres is still writing the
    // previous batch, rather than inside this batch's write, while Postgres waits for its statements.
    await precompute(items, firstImport !== undefined);
    await inFlight;
    if (items.length === 0) return;
    inFlight = write(items);
    inFlight.catch(() => undefined); // observed by the next flush or the final await
  };

  const items = readRosterItems(input, format, options.memberIdentifierSystem);
  try {
    for await (const item of items) {
      pending.push(item);
      if (pending.length >= batchSize) await flush();
      // Parsing yields to the event loop now and then too, for the same reason as precompute.
      else if (pending.length % PRECOMPUTE_SLICE === 0) await setImmediate();
    }
    await flush();
    await inFlight;
  } catch (error) {
    if (error instanceof RosterFileError) {
      // The rows before the offending line were read and are valid: write them, then report how far we got.
      await flush();
      await inFlight;
      error.summary = snapshot(summary);
    } else {
      await inFlight.catch(() => undefined);
    }
    throw error;
  } finally {
    if (!input.destroyed) input.destroy();
    if (firstImport) await finishFirstImport(db, firstImport);
  }
  // After a bulk load the planner's statistics are stale until autovacuum gets round to them (a plan built on
  // an empty table's statistics turns each candidate lookup into a scan), and a re-import that rewrote most
  // members leaves the blocking-key table half dead tuples, which index-only block probes must then visit.
  // Vacuum and analyze now rather than serve requests on a bloated, misestimated index.
  if (summary.updated >= ANALYZE_AFTER_ROWS) {
    await sql`VACUUM (ANALYZE) members, member_match_profiles, member_identifiers, coverages, member_blocking_keys`.execute(db);
  } else if (summary.inserted >= ANALYZE_AFTER_ROWS) {
    await sql`ANALYZE members, member_match_profiles, member_identifiers, coverages, member_blocking_keys`.execute(db);
  }
  return summary;
}

type ItemOutcome = UpsertOutcome | { rejected: string };

/** A first import's state: the keys of members written twice in it, rewritten once the indexes are built. */
interface FirstImportState {
  laterKeys: Map<string, string[]>;
}

async function finishFirstImport(db: Db, state: FirstImportState): Promise<void> {
  await buildDeferredIndexes(db);
  const entries = [...state.laterKeys].map(([memberUuid, keys]) => ({ memberUuid, keys, isNew: false }));
  for (let i = 0; i < entries.length; i += DEFAULT_BATCH_SIZE) {
    const slice = entries.slice(i, i + DEFAULT_BATCH_SIZE);
    await db.transaction().execute((trx) => replaceBlockingKeys(trx, slice));
  }
}

function combine(a: UpsertOutcome, b: UpsertOutcome): UpsertOutcome {
  if (a === 'inserted' || b === 'inserted') return 'inserted';
  if (a === 'updated' || b === 'updated') return 'updated';
  return 'unchanged';
}

/**
 * Splits writes into rounds so that no statement touches one key twice: the k-th distinct version of a key
 * within the batch goes into round k, which keeps file order for that key ("a later row counts as an update").
 * A repeat of the version already planned is not written again and counts as unchanged.
 */
class RoundPlanner<T> {
  readonly rounds: T[][] = [];
  private readonly latest = new Map<string, { hash: string; round: number }>();

  /** Returns the round the value is written in, and whether it is a repeat (not written again). */
  plan(key: string, hash: string, value: T, isRepeat: (previousHash: string) => boolean): { round: number; repeat: boolean } {
    const previous = this.latest.get(key);
    if (previous && isRepeat(previous.hash)) return { round: previous.round, repeat: true };
    const round = previous ? previous.round + 1 : 0;
    (this.rounds[round] ??= []).push(value);
    this.latest.set(key, { hash, round });
    return { round, repeat: false };
  }
}

/** Records precomputed between two yields to the event loop (a few milliseconds of work). */
const PRECOMPUTE_SLICE = 200;

/** A member's blocking keys (memoised per record: {@link precompute} computes them ahead of the write). */
const memberKeys = memoisedPerObject((m: MemberRecord): string[] => memberBlockingKeys({ ...memberMatchProfile(m), identifiers: [] }));

/**
 * Computes, ahead of its write, what writing a batch needs of each record (all memoised per record). Blocking keys
 * are needed only for members that change, so they are computed ahead only in a first import, where nearly every
 * member is new; a re-import mostly finds members unchanged.
 */
async function precompute(items: readonly RosterItem[], withBlockingKeys: boolean): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    // Yield now and then, so that the previous batch's next statement goes out as soon as Postgres answers.
    if (i % PRECOMPUTE_SLICE === PRECOMPUTE_SLICE - 1) await setImmediate();
    const item = items[i]!;
    if (item.kind === 'rejected') continue;
    if (item.kind !== 'coverage') {
      memberContentHash(item.member);
      memberStoredProfile(item.member);
      if (withBlockingKeys) memberKeys(item.member);
    }
    if (item.kind !== 'patient') coverageContentHash(item.coverage);
  }
}

/** Imports that write at least this many rows vacuum and analyze the member index afterwards. */
const ANALYZE_AFTER_ROWS = 1_000;

/** Writes one batch in one transaction; returns one outcome per item, in order. */
async function writeBatch(
  trx: Tx,
  items: readonly Exclude<RosterItem, { kind: 'rejected' }>[],
  memberIdentifierSystem: string,
  firstImport: FirstImportState | undefined,
): Promise<ItemOutcome[]> {
  const outcomes: (ItemOutcome | undefined)[] = new Array<ItemOutcome | undefined>(items.length);

  // Patients already stored, by Patient.id: owners of the ids this batch claims, and Coverage beneficiaries.
  const sourceIds = new Set<string>();
  for (const item of items) {
    if (item.kind === 'patient' && item.member.sourceResourceId) sourceIds.add(item.member.sourceResourceId);
    if (item.kind === 'coverage') sourceIds.add(item.beneficiaryId);
  }
  const stored = new Map((await findMembersBySourceResourceIds(trx, [...sourceIds])).map((o) => [o.sourceResourceId, o]));

  // Plan the member writes.
  const members = new RoundPlanner<MemberRecord>();
  const memberPlan: ({ memberId: string; round: number; repeat: boolean } | undefined)[] = [];
  /** Coverage → its member: by member id (a Patient earlier in this batch) or by stored uuid. */
  const coverageOwner: ({ memberId: string } | { uuid: string } | undefined)[] = [];
  const claimed = new Map<string, string>(); // Patient.id → member id, as of the current line
  const plannedSource = new Map<string, string>(); // member id → Patient.id its latest planned version sets

  items.forEach((item, i) => {
    if (item.kind === 'coverage') {
      const memberId = claimed.get(item.beneficiaryId);
      const storedOwner = stored.get(item.beneficiaryId);
      if (memberId !== undefined) coverageOwner[i] = { memberId };
      else if (storedOwner) coverageOwner[i] = { uuid: storedOwner.id };
      else outcomes[i] = { rejected: BENEFICIARY_NOT_FOUND };
      return;
    }
    const m = item.member;
    const source = m.sourceResourceId;
    if (source) {
      const owner = claimed.get(source) ?? stored.get(source)?.memberId;
      if (owner !== undefined && owner !== m.memberId) {
        outcomes[i] = { rejected: 'Patient.id is already used by another member' };
        return;
      }
      claimed.set(source, m.memberId);
    }
    const hash = memberContentHash(m);
    const previousSource = plannedSource.get(m.memberId);
    const planned = members.plan(
      m.memberId,
      hash,
      m,
      (previousHash) => previousHash === hash && (source === null || source === previousSource),
    );
    if (!planned.repeat && source !== null) plannedSource.set(m.memberId, source);
    memberPlan[i] = { memberId: m.memberId, ...planned };
  });

  // A roster row holds a member and one of its coverages: a new member's card values, as far as this batch knows.
  const knownCardValues = new Map<string, string[]>();
  for (const item of items) {
    if (item.kind !== 'row') continue;
    const values = knownCardValues.get(item.member.memberId) ?? [];
    values.push(item.coverage.coverageId, ...(item.coverage.subscriberId === null ? [] : [item.coverage.subscriberId]));
    knownCardValues.set(item.member.memberId, values);
  }
  const memberResults: Map<string, MemberUpsertResult>[] = [];
  const uuidOf = new Map<string, string>();
  for (const round of members.rounds) {
    const results = await upsertMembers(trx, round, knownCardValues);
    // Blocking keys follow the demographics: rewritten for inserted and updated members only.
    const changed = round.flatMap((m, k) => (results[k]!.outcome === 'unchanged' ? [] : [{ memberUuid: results[k]!.id, keys: memberKeys(m), isNew: results[k]!.outcome === 'inserted' }]));
    if (firstImport) {
      // No index on the keys yet: new members' keys go in with a plain insert; a member written again in this
      // import gets its keys replaced once the indexes are back (the latest version's).
      await insertNewBlockingKeys(trx, changed.filter((e) => e.isNew));
      for (const e of changed) if (!e.isNew) firstImport.laterKeys.set(e.memberUuid, e.keys);
    } else {
      await replaceBlockingKeys(trx, changed);
    }
    const byId = new Map<string, MemberUpsertResult>();
    round.forEach((m, k) => {
      const result = results[k]!;
      byId.set(m.memberId, result);
      uuidOf.set(m.memberId, result.id);
    });
    memberResults.push(byId);
  }

  // The roster's `sharing` column feeds the consent registry: it records opt-outs, never clears one (an
  // opt-out recorded by staff or the member stands until they lift it).
  const optOuts = items.flatMap((item) =>
    item.kind === 'row' && item.sharing && uuidOf.has(item.member.memberId) ? [{ memberUuid: uuidOf.get(item.member.memberId)!, status: item.sharing }] : [],
  );
  await recordRosterOptOuts(trx, optOuts);

  await upsertMemberIdentifiers(
    trx,
    [...uuidOf].map(([memberId, memberUuid]) => ({
      memberUuid,
      system: memberIdentifierSystem,
      value: memberId,
      typeCode: MEMBER_IDENTIFIER_TYPE,
    })),
  );

  // Plan and write the coverages.
  const coverages = new RoundPlanner<{ memberUuid: string; coverage: CoverageRecord }>();
  const coveragePlan: ({ key: string; round: number; repeat: boolean } | undefined)[] = [];
  items.forEach((item, i) => {
    if (outcomes[i] !== undefined || item.kind === 'patient') return;
    const owner = item.kind === 'row' ? { memberId: item.member.memberId } : coverageOwner[i];
    const memberUuid = owner && ('uuid' in owner ? owner.uuid : uuidOf.get(owner.memberId));
    if (memberUuid === undefined) {
      outcomes[i] = { rejected: BENEFICIARY_NOT_FOUND };
      return;
    }
    const key = coverageKey(memberUuid, item.coverage.coverageId);
    const hash = coverageContentHash(item.coverage);
    const planned = coverages.plan(key, hash, { memberUuid, coverage: item.coverage }, (previousHash) => previousHash === hash);
    coveragePlan[i] = { key, ...planned };
  });
  const coverageResults: Map<string, UpsertOutcome>[] = [];
  for (const round of coverages.rounds) {
    const results = await upsertCoverages(trx, round);
    coverageResults.push(new Map(round.map((c, k) => [coverageKey(c.memberUuid, c.coverage.coverageId), results[k]!])));
  }

  return items.map((item, i) => {
    const settled = outcomes[i];
    if (settled !== undefined) return settled;
    const member = memberPlan[i];
    const memberOutcome: UpsertOutcome | undefined = member
      ? member.repeat
        ? 'unchanged'
        : memberResults[member.round]?.get(member.memberId)?.outcome
      : undefined;
    const coverage = coveragePlan[i];
    const coverageOutcome: UpsertOutcome | undefined = coverage
      ? coverage.repeat
        ? 'unchanged'
        : coverageResults[coverage.round]?.get(coverage.key)
      : undefined;
    if (item.kind === 'patient') return memberOutcome ?? 'unchanged';
    if (item.kind === 'coverage') return coverageOutcome ?? 'unchanged';
    return combine(memberOutcome ?? 'unchanged', coverageOutcome ?? 'unchanged');
  });
}

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { withDeadline } from '../deadline.js';
import { TooManyRequestsError } from '../errors.js';
import { lockouts } from '../metrics.js';

/**
 * Behavioural limits, kept in Redis so every server and worker process sees the same counts:
 *  - a per-client request rate (fixed one-minute windows), applied by the HTTP layer;
 *  - the match guards (HRex: servers SHALL guard against brute force), applied by the match pipeline to every
 *    door — `$member-match`, `$bulk-member-match`, roster reconciliation — and keyed by the *tenant* on whose
 *    authority the caller acts (see src/pipeline/authority.ts), so a bulk request or a delegated agent counts
 *    against the same lockout as the partner's own single requests:
 *      · one person's demographics retried with many card identifiers,
 *      · one name retried with many birth dates in the same year,
 *      · many members asked about who match nobody,
 *    each tripping a lockout that refuses the tenant's matching for a cooling-off period;
 *  - a review-case budget per tenant and hour, so no client can flood the reviewers.
 * Counters hold keyed hashes only, never demographics or identifiers.
 *
 * A lockout outlives a Redis loss: it is written to Postgres (`tenant_lockouts`, the source of truth) as well as
 * to Redis, and checked in both. The counters themselves stay in Redis only: losing them restarts the counting
 * (a prober gets at most one more window's worth of attempts), which is acceptable for a guard.
 */

export interface LimitSettings {
  requestsPerMinute: number;
  /** Distinct card identifiers tried with one person's demographics within the window. */
  cardVariantsPerPerson: number;
  /** Distinct birth dates tried with one name and birth year within the window. */
  birthDateVariantsPerName: number;
  /** Members asked about who end in no match (or review) within the window. */
  unmatchedPerWindow: number;
  windowSeconds: number;
  lockoutSeconds: number;
  /** Review cases a partner (or an agent acting for one) may open per hour. */
  reviewCasesPerHour: number;
  /** Review cases one of our own workloads (roster reconciliation) may open per hour. */
  internalReviewCasesPerHour: number;
}

export type TripReason = 'card-variants' | 'birth-date-variants' | 'unmatched-requests';

/**
 * Limits fail open: with Redis unreachable a request is served, unthrottled, rather than refused — answering
 * a member's payer-to-payer request is a legal duty, and the counters are a guard, not the gate (every request
 * is still authenticated, authorized, consent-checked and audited). `/readyz` reports Redis down meanwhile.
 * A lockout is read from Postgres and Redis at once: either store alone still enforces it; with both
 * unreachable the tenant is served (and with Postgres down, matching fails anyway).
 */
async function guarded<T>(work: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await withDeadline(work(), 1_000, 'limits store timed out');
  } catch (error) {
    if (error instanceof TooManyRequestsError) throw error;
    return fallback;
  }
}

/** Counts the request in the client's current minute; 429 beyond the limit. */
export async function enforceRequestRate(redis: Redis, settings: LimitSettings, clientId: string, now = Date.now()): Promise<void> {
  await guarded(async () => {
    const minute = Math.floor(now / 60_000);
    const key = `rate:${clientId}:${minute}`;
    const [[, count]] = (await redis.multi().incr(key).expire(key, 120).exec()) as [[null, number], [null, number]];
    if (count > settings.requestsPerMinute) {
      throw new TooManyRequestsError('rate-limited', 'too many requests from this client; slow down', 60 - Math.floor((now / 1000) % 60));
    }
  }, undefined);
}

/**
 * Seconds the tenant's matching stays locked, or 0: the longer of Postgres' lockout (a primary-key lookup) and
 * Redis' copy, read in parallel. Without `db` (a caller that has no database handle) only Redis is asked, whose
 * copy the queue reconciler restores from Postgres after a Redis loss (`restoreLockouts`).
 */
export async function lockoutRemaining(redis: Redis, tenant: string, db?: Db): Promise<number> {
  const [stored, cached] = await Promise.all([
    db ? guarded(() => storedLockoutRemaining(db, tenant), 0) : 0,
    guarded(async () => Math.max(0, await redis.ttl(lockoutKey(tenant))), 0),
  ]);
  return Math.max(stored, cached);
}

const lockoutKey = (tenant: string) => `lockout:${tenant}`;

/**
 * The lockouts Postgres holds, as this process last read them: the whole (small) table of lockouts in force,
 * re-read at most every STORED_LOCKOUTS_MAX_AGE_MS, instead of one query per match request. Redis answers at once
 * for a lockout tripped anywhere; this copy is what still holds when Redis has lost it (other processes see it
 * within the interval; the reconciler also restores Redis). A lockout this process trips is added at once.
 */
const STORED_LOCKOUTS_MAX_AGE_MS = 1_000;
const storedLockouts = new WeakMap<Db, { readAt: number; untilByTenant: Map<string, number>; reading?: Promise<void> }>();

async function storedLockoutRemaining(db: Db, tenant: string): Promise<number> {
  let copy = storedLockouts.get(db);
  if (!copy) {
    copy = { readAt: 0, untilByTenant: new Map() };
    storedLockouts.set(db, copy);
  }
  if (Date.now() - copy.readAt > STORED_LOCKOUTS_MAX_AGE_MS) {
    const current = copy;
    current.reading ??= (async () => {
      const rows = await sql<{ tenant: string; ms: number }>`
        SELECT tenant, (extract(epoch FROM until - now()) * 1000)::float8 AS ms FROM tenant_lockouts WHERE until > now()`.execute(db);
      const readAt = Date.now();
      current.untilByTenant = new Map(rows.rows.map((r) => [r.tenant, readAt + r.ms]));
      current.readAt = readAt;
    })().finally(() => {
      current.reading = undefined;
    });
    await current.reading;
  }
  const until = copy.untilByTenant.get(tenant);
  return until === undefined ? 0 : Math.max(0, Math.ceil((until - Date.now()) / 1000));
}

function rememberStoredLockout(db: Db, tenant: string, seconds: number): void {
  const copy = storedLockouts.get(db);
  const until = Date.now() + seconds * 1000;
  if (copy) copy.untilByTenant.set(tenant, Math.max(until, copy.untilByTenant.get(tenant) ?? 0));
}

/**
 * Copies every lockout still in force from Postgres into Redis where Redis lacks it (after a Redis loss), so
 * callers reading Redis alone see it again; answers how many it restored. Idempotent (`SET NX`), so several
 * workers may run it at once.
 */
export async function restoreLockouts(db: Db, redis: Redis): Promise<number> {
  const active = await sql<{ tenant: string; reason: string; seconds: number }>`
    SELECT tenant, reason, ceil(extract(epoch FROM until - now()))::int AS seconds FROM tenant_lockouts WHERE until > now()`.execute(db);
  if (active.rows.length === 0) return 0;
  const pipeline = redis.pipeline();
  for (const l of active.rows) pipeline.set(lockoutKey(l.tenant), l.reason, 'EX', Math.max(1, l.seconds), 'NX');
  const results = (await withDeadline(pipeline.exec(), 5_000, 'limits store timed out')) ?? [];
  return results.filter(([error, reply]) => !error && reply === 'OK').length;
}

/** One member asked about, as the brute-force counters see it: keyed hashes only. */
export interface MatchAttempt {
  /** Keyed hash of name and birth date: "this person". */
  demographicsHash: string;
  /** Keyed hash of name and birth year: "this person, birthday unknown". */
  nameYearHash: string;
  /** Keyed hash of the birth date alone. */
  birthDateHash: string;
  cardIdentifiers: readonly string[];
}

/**
 * The lockout check and the attempt count in one Redis round trip (a script, atomic like MULTI): the lockout's
 * TTL, and only when the tenant is not locked, each attempt's two sets added to and counted. A locked tenant's
 * attempts are not counted, exactly as when the two were separate calls (a locked batch is refused before
 * anything is counted). Postgres' copy of the lockout is read as `lockoutRemaining` reads it, in parallel.
 * Answers the seconds locked (0 if not) and, when not locked, the trip reason this count crossed (the lockout is
 * then set). Each round trip saved here is a socket write and a wake-up of Redis, the dearest part of a
 * request's CPU on this project's machines (docs/benchmarks.md).
 */
export async function lockoutOrCountAttempts(
  redis: Redis,
  settings: LimitSettings,
  tenant: string,
  attempts: readonly MatchAttempt[],
  db: Db,
): Promise<{ lockedFor: number; trip?: TripReason | undefined }> {
  const keys = [lockoutKey(tenant)];
  const members: string[] = [];
  for (const attempt of attempts) {
    keys.push(`bf:cards:${tenant}:${attempt.demographicsHash}`, `bf:dates:${tenant}:${attempt.nameYearHash}`);
    members.push(cardsDigest(attempt), attempt.birthDateHash);
  }
  const [stored, counted] = await Promise.all([
    guarded(() => storedLockoutRemaining(db, tenant), 0),
    guarded(async () => (await runScript(redis, LOCKOUT_OR_COUNT, keys, [String(settings.windowSeconds), ...members])) as number[], [0]),
  ]);
  const lockedFor = Math.max(stored, counted[0] ?? 0);
  if (lockedFor > 0) return { lockedFor };
  let trip: TripReason | undefined;
  for (let i = 0; i < attempts.length && !trip; i++) {
    if ((counted[1 + 2 * i] ?? 0) > settings.cardVariantsPerPerson) trip = 'card-variants';
    else if ((counted[2 + 2 * i] ?? 0) > settings.birthDateVariantsPerName) trip = 'birth-date-variants';
  }
  if (trip) await lock(db, redis, settings, tenant, trip);
  return { lockedFor: 0, trip };
}

/** KEYS[1] the lockout, then the attempts' sets; ARGV[1] the window in seconds, then each set's new member. */
const LOCKOUT_OR_COUNT = `
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then return {ttl} end
local out = {0}
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1], 'NX')
  out[i] = redis.call('SCARD', KEYS[i])
end
return out`;

const scriptDigests = new Map<string, string>();

/** EVALSHA, and EVAL when Redis does not hold the script yet (after a restart or a SCRIPT FLUSH). */
async function runScript(redis: Redis, script: string, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  let digest = scriptDigests.get(script);
  if (!digest) scriptDigests.set(script, (digest = createHash('sha1').update(script).digest('hex')));
  try {
    return await redis.evalsha(digest, keys.length, ...keys, ...args);
  } catch (error) {
    if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
    return redis.eval(script, keys.length, ...keys, ...args);
  }
}

function cardsDigest(attempt: MatchAttempt): string {
  return createHash('sha256').update([...attempt.cardIdentifiers].sort().join('\n')).digest('base64url').slice(0, 16);
}

/** Adds `count` unmatched members to the tenant's window; answers the trip reason when that crosses the limit. */
export async function countUnmatched(redis: Redis, settings: LimitSettings, tenant: string, count: number, db: Db): Promise<TripReason | undefined> {
  if (count === 0) return undefined;
  const reason = await guarded(async (): Promise<TripReason | undefined> => {
    const key = `bf:unmatched:${tenant}`;
    const [[, total]] = (await redis.multi().incrby(key, count).expire(key, settings.windowSeconds, 'NX').exec()) as [[null, number], [null, number]];
    return total <= settings.unmatchedPerWindow ? undefined : 'unmatched-requests';
  }, undefined);
  if (reason) await lock(db, redis, settings, tenant, reason);
  return reason;
}

/**
 * Locks the tenant out in both stores, each on its own: Postgres (the source of truth, which survives a Redis
 * loss; a later trip extends, never shortens) and Redis (the copy). A store that fails is skipped.
 */
async function lock(db: Db, redis: Redis, settings: LimitSettings, tenant: string, reason: TripReason): Promise<void> {
  lockouts.inc({ reason });
  await Promise.all([
    guarded(async () => {
      await sql`
        INSERT INTO tenant_lockouts (tenant, reason, locked_at, until) VALUES (${tenant}, ${reason}, now(), now() + make_interval(secs => ${settings.lockoutSeconds}))
        ON CONFLICT (tenant) DO UPDATE SET reason = excluded.reason, locked_at = excluded.locked_at, until = greatest(tenant_lockouts.until, excluded.until)`.execute(db);
      rememberStoredLockout(db, tenant, settings.lockoutSeconds);
    }, undefined),
    guarded(async () => void (await redis.set(lockoutKey(tenant), reason, 'EX', settings.lockoutSeconds)), undefined),
  ]);
}

/**
 * Reserves up to `wanted` new review cases from the tenant's hourly budget; answers how many were granted and
 * whether this call is the first in the hour to be refused any (which is the one that writes the alert).
 */
export async function reserveReviewCases(
  redis: Redis,
  budgetPerHour: number,
  tenant: string,
  wanted: number,
  now = Date.now(),
): Promise<{ granted: number; firstRefusal: boolean }> {
  if (wanted === 0) return { granted: 0, firstRefusal: false };
  return guarded(async () => {
    const hour = Math.floor(now / 3_600_000);
    const key = `review-budget:${tenant}:${hour}`;
    const [[, total]] = (await redis.multi().incrby(key, wanted).expire(key, 7_200).exec()) as [[null, number], [null, number]];
    const before = total - wanted;
    const granted = Math.max(0, Math.min(wanted, budgetPerHour - before));
    if (granted === wanted) return { granted, firstRefusal: false };
    const alerted = await redis.set(`review-budget-alert:${tenant}:${hour}`, '1', 'EX', 7_200, 'NX');
    return { granted, firstRefusal: alerted === 'OK' };
  }, { granted: wanted, firstRefusal: false });
}

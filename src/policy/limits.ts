import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { withDeadline } from '../deadline.js';
import { TooManyRequestsError } from '../errors.js';

/**
 * Behavioural limits, kept in Redis so every server process sees the same counts:
 *  - a per-client request rate (fixed one-minute windows);
 *  - brute-force detection for $member-match (HRex: servers SHALL guard against it): the same person's
 *    demographics retried with many different card identifiers, or many requests from one client that match
 *    nobody, trip a lockout that refuses that client's matching for a cooling-off period.
 * Counters hold keyed hashes only, never demographics or identifiers.
 */

export interface LimitSettings {
  requestsPerMinute: number;
  /** Distinct card identifiers tried with one person's demographics within the window. */
  cardVariantsPerPerson: number;
  /** Requests ending in no match (or review) within the window. */
  unmatchedPerWindow: number;
  windowSeconds: number;
  lockoutSeconds: number;
}

export type TripReason = 'card-variants' | 'unmatched-requests';

/**
 * Limits fail open: with Redis unreachable a request is served, unthrottled, rather than refused — answering
 * a member's payer-to-payer request is a legal duty, and the counters are a guard, not the gate (every request
 * is still authenticated, authorized, consent-checked and audited). `/readyz` reports Redis down meanwhile.
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

/** 429 while the client's matching is locked out. */
export async function enforceNoLockout(redis: Redis, clientId: string): Promise<void> {
  await guarded(async () => {
    const ttl = await redis.ttl(`lockout:${clientId}`);
    if (ttl > 0) {
      throw new TooManyRequestsError('matching-locked', "this client's member matching is suspended after suspicious activity", ttl);
    }
  }, undefined);
}

/**
 * Records one $member-match attempt and answers whether it trips the lockout: the card identifiers tried for
 * these demographics (as a hash) join a per-person set; an unmatched outcome increments the client's count.
 */
export async function recordMatchAttempt(
  redis: Redis,
  settings: LimitSettings,
  attempt: { clientId: string; demographicsHash: string; cardIdentifiers: readonly string[]; unmatched: boolean },
): Promise<TripReason | undefined> {
  return guarded(async () => {
    const card = createHash('sha256').update([...attempt.cardIdentifiers].sort().join('\n')).digest('base64url').slice(0, 16);
    const variantsKey = `bf:cards:${attempt.clientId}:${attempt.demographicsHash}`;
    const unmatchedKey = `bf:unmatched:${attempt.clientId}`;
    const pipeline = redis.multi().sadd(variantsKey, card).expire(variantsKey, settings.windowSeconds, 'NX').scard(variantsKey);
    if (attempt.unmatched) pipeline.incr(unmatchedKey).expire(unmatchedKey, settings.windowSeconds, 'NX');
    const results = (await pipeline.exec()) as [null, number][];
    const variants = results[2]![1];
    const unmatched = attempt.unmatched ? results[3]![1] : 0;
    const reason: TripReason | undefined =
      variants > settings.cardVariantsPerPerson ? 'card-variants' : unmatched > settings.unmatchedPerWindow ? 'unmatched-requests' : undefined;
    if (reason) await redis.set(`lockout:${attempt.clientId}`, reason, 'EX', settings.lockoutSeconds);
    return reason;
  }, undefined);
}

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockoutOrCountAttempts, type LimitSettings, type MatchAttempt } from '../src/policy/limits.js';
import { createRedis } from '../src/redis.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/**
 * The lockout check and the attempt count share one Redis script (src/policy/limits.ts): real Redis under a key
 * prefix of its own, real Postgres for the lockout's stored copy.
 */
const settings: LimitSettings = {
  requestsPerMinute: 1000,
  cardVariantsPerPerson: 2,
  birthDateVariantsPerName: 5,
  unmatchedPerWindow: 100,
  windowSeconds: 600,
  lockoutSeconds: 300,
  reviewCasesPerHour: 100,
  internalReviewCasesPerHour: 100,
};
const prefix = `test:lockout-script:${randomUUID()}:`;
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
let t: TestDatabase;

const attempt = (card: string, birthDate = 'b1'): MatchAttempt => ({
  demographicsHash: 'person-1',
  nameYearHash: 'name-year-1',
  birthDateHash: birthDate,
  cardIdentifiers: [card],
});

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys.map((k) => k.slice(prefix.length)));
  redis.disconnect();
  await t.drop();
});

describe('lockout check and attempt count in one round trip', () => {
  it('counts card variants per person and trips, locking the tenant in both stores', async () => {
    expect(await lockoutOrCountAttempts(redis, settings, 'tenant-a', [attempt('c1')], t.db)).toEqual({ lockedFor: 0, trip: undefined });
    expect(await lockoutOrCountAttempts(redis, settings, 'tenant-a', [attempt('c2')], t.db)).toEqual({ lockedFor: 0, trip: undefined });
    expect(await lockoutOrCountAttempts(redis, settings, 'tenant-a', [attempt('c3')], t.db)).toEqual({ lockedFor: 0, trip: 'card-variants' });
    expect(await redis.ttl('lockout:tenant-a')).toBeGreaterThan(0);
    const stored = await sql<{ reason: string }>`SELECT reason FROM tenant_lockouts WHERE tenant = 'tenant-a'`.execute(t.db);
    expect(stored.rows[0]?.reason).toBe('card-variants');
  });

  it('answers a locked tenant with its lockout and counts nothing while it lasts', async () => {
    await redis.set('lockout:tenant-b', 'card-variants', 'EX', 120);
    const answer = await lockoutOrCountAttempts(redis, settings, 'tenant-b', [attempt('c1'), attempt('c2', 'b2')], t.db);
    expect(answer.lockedFor).toBeGreaterThan(100);
    expect(answer.trip).toBeUndefined();
    expect(await redis.exists('bf:cards:tenant-b:person-1', 'bf:dates:tenant-b:name-year-1')).toBe(0);
  });

  it('sets each counter to expire with the window, once', async () => {
    await lockoutOrCountAttempts(redis, settings, 'tenant-c', [attempt('c1')], t.db);
    await redis.expire('bf:cards:tenant-c:person-1', 50);
    await lockoutOrCountAttempts(redis, settings, 'tenant-c', [attempt('c2')], t.db);
    const ttl = await redis.ttl('bf:cards:tenant-c:person-1');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(50); // NX: a later attempt does not prolong the window
    expect(await redis.scard('bf:cards:tenant-c:person-1')).toBe(2);
  });

  it('loads the script again when Redis has lost it (SCRIPT FLUSH, a restart)', async () => {
    await lockoutOrCountAttempts(redis, settings, 'tenant-d', [attempt('c1')], t.db);
    await redis.script('FLUSH');
    expect(await lockoutOrCountAttempts(redis, settings, 'tenant-d', [attempt('c2')], t.db)).toEqual({ lockedFor: 0, trip: undefined });
    expect(await redis.scard('bf:cards:tenant-d:person-1')).toBe(2);
  });

  it('checks only the lockout for a door that counts no attempts', async () => {
    expect(await lockoutOrCountAttempts(redis, settings, 'tenant-e', [], t.db)).toEqual({ lockedFor: 0, trip: undefined });
    await redis.set('lockout:tenant-e', 'unmatched-requests', 'EX', 60);
    expect((await lockoutOrCountAttempts(redis, settings, 'tenant-e', [], t.db)).lockedFor).toBeGreaterThan(0);
  });
});

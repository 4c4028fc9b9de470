import { appendAuditEvent } from '../audit/audit-trail.js';
import type { Db } from '../db/database.js';
import { TooManyRequestsError } from '../errors.js';
import type { Logger } from '../logger.js';
import { runPeriodically } from '../periodic.js';

/**
 * Failed authentication, per source address, before any token is verified. An unauthenticated flood must
 * neither slow legitimate callers nor write an audit row per request:
 *  - past `perMinute` failures in a minute, a source is answered 429 with Retry-After, without verifying
 *    anything, until the minute ends;
 *  - the first `auditedPerMinute` failures of a source in a minute are audited one by one (as before); the rest,
 *    and the refusals, are counted and written as one `authentication-failures` event per source per minute.
 * Counts are kept in this process (each API process throttles its own share), so they work with Redis down.
 */
export interface AuthFailureSettings {
  perMinute: number;
  auditedPerMinute: number;
}

export interface AuthFailureGuard {
  /** 429 when the source has failed too often this minute. */
  refuseIfThrottled(source: string | undefined): void;
  /** Counts a failure; answers whether this one is audited on its own (else it joins the minute's aggregate). */
  recordFailure(source: string | undefined): 'audit' | 'aggregate';
  /** Writes the aggregates of minutes that have ended (all of them when `all`). */
  flush(all?: boolean): Promise<void>;
  stop(): Promise<void>;
}

interface SourceCount {
  minute: number;
  failures: number;
  throttled: number;
}

/** At most this many sources are tracked one by one; beyond, they share one aggregate (a spoofing flood cannot grow the map). */
const MAX_SOURCES = 10_000;
const OTHER_SOURCES = 'other';

export function createAuthFailureGuard(db: Db, logger: Logger, settings: AuthFailureSettings, now: () => number = Date.now): AuthFailureGuard {
  let counts = new Map<string, SourceCount>();
  /** Finished minutes waiting to be written. */
  let pending: [string, SourceCount][] = [];
  const minuteOf = (ms: number) => Math.floor(ms / 60_000);
  const entry = (source: string | undefined): SourceCount => {
    const minute = minuteOf(now());
    let key = source ?? 'unknown';
    if (!counts.has(key) && counts.size >= MAX_SOURCES) key = OTHER_SOURCES;
    let count = counts.get(key);
    if (count && count.minute !== minute) {
      pending.push([key, count]);
      count = undefined;
    }
    if (!count) {
      count = { minute, failures: 0, throttled: 0 };
      counts.set(key, count);
    }
    return count;
  };

  async function flush(all = false): Promise<void> {
    const current = minuteOf(now());
    const keep = new Map<string, SourceCount>();
    for (const [source, count] of counts) {
      if (all || count.minute !== current) pending.push([source, count]);
      else keep.set(source, count);
    }
    counts = keep;
    const batch = pending;
    pending = [];
    for (const [source, count] of batch) {
      const unaudited = Math.max(0, count.failures - settings.auditedPerMinute);
      if (unaudited === 0 && count.throttled === 0) continue;
      await appendAuditEvent(db, {
        sourceIp: source === OTHER_SOURCES || source === 'unknown' ? undefined : source,
        operation: 'authentication-failures',
        outcome: 'failure',
        reasonCode: count.throttled > 0 ? 'throttled' : 'failed-authentication',
        details: { minuteStart: new Date(count.minute * 60_000).toISOString(), failures: count.failures, unaudited, throttled: count.throttled, ...(source === OTHER_SOURCES ? { sources: 'other' } : {}) },
      });
    }
  }

  const loop = runPeriodically(() => flush(), { intervalMs: 60_000, logger, failing: 'cannot write failed-authentication aggregates; will retry', recovered: 'failed-authentication aggregates written again' });

  return {
    refuseIfThrottled(source) {
      const count = entry(source);
      if (count.failures < settings.perMinute) return;
      count.throttled += 1;
      const retryAfter = 60 - Math.floor((now() / 1000) % 60);
      throw new TooManyRequestsError('authentication-throttled', 'too many failed authentications from this address; wait before trying again', retryAfter);
    },
    recordFailure(source) {
      const count = entry(source);
      count.failures += 1;
      return count.failures <= settings.auditedPerMinute ? 'audit' : 'aggregate';
    },
    flush,
    async stop() {
      await loop.stop();
      await flush(true).catch((error: unknown) => logger.warn({ errName: (error as Error).name }, 'failed-authentication aggregates lost at shutdown'));
    },
  };
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/audit-trail.js';
import type { Db } from '../src/db/database.js';
import { authorityOf } from '../src/pipeline/authority.js';
import { commitPlansAtomically } from '../src/pipeline/commit.js';
import type { MatchPlan, PlannedBatch } from '../src/pipeline/types.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

const authority = authorityOf({
  actorClass: 'workload',
  subject: 'nightly-reconcile',
  clientId: 'nightly-reconcile',
  organization: { system: 'urn:test:org', value: 'us' },
  scopes: [],
  purposeOfUse: undefined,
  protocol: 'token-exchange',
  tokenJti: 'jti-1',
});
const noMatch: MatchPlan = { outcome: 'no-match', reasonCode: 'no-match', details: {}, effects: {} };
const options = { requestId: 'req-1', auditEvent: (plan: MatchPlan) => ({ operation: 'member-match', outcome: 'failure' as const, reasonCode: plan.reasonCode }) };

/** The database, with `transaction()` replaced: it records that it was asked for and refuses. */
function withoutTransactions(db: Db): { db: Db; asked: () => number } {
  let asked = 0;
  const proxy = new Proxy(db, {
    get(target, key, receiver) {
      if (key === 'transaction') {
        return () => {
          asked++;
          throw new Error('transaction refused by the test');
        };
      }
      // Kysely keeps its state in private fields: its methods must run on the real object.
      const value = Reflect.get(target, key, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: proxy, asked: () => asked };
}

describe('commitPlansAtomically', () => {
  it('writes the events of plans without effects (a no-match and its security alert) with one statement, no transaction', async () => {
    const { db, asked } = withoutTransactions(database.db);
    const batch: PlannedBatch = { plans: [noMatch], alerts: [{ reasonCode: 'brute-force:unmatched', details: { lockoutSeconds: 900 } }] };
    await commitPlansAtomically(db, authority, batch, options);
    expect(asked()).toBe(0);
    const events = await database.db.selectFrom('audit_events').select(['operation', 'reason_code', 'request_id']).orderBy('seq').execute();
    expect(events).toEqual([
      { operation: 'security-alert', reason_code: 'brute-force:unmatched', request_id: 'req-1' },
      { operation: 'member-match', reason_code: 'no-match', request_id: null },
    ]);
    expect(await verifyAuditChain(database.db)).toMatchObject({ ok: true, events: 2 });
  });

  it('opens a transaction as soon as one plan has an effect to write beside its event', async () => {
    const { db, asked } = withoutTransactions(database.db);
    const withCase: MatchPlan = { ...noMatch, outcome: 'review-pending', reasonCode: 'review-pending', effects: { newCase: {} as never } };
    await expect(commitPlansAtomically(db, authority, { plans: [noMatch, withCase], alerts: [] }, options)).rejects.toThrow(/refused by the test/);
    expect(asked()).toBe(1);
  });
});

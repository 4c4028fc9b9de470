import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startService } from '../src/service.js';
import { startWorkers } from '../src/workers.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { memberMatchRequest, reconcileRoster, rosterOf, workloadToken, type TestPerson } from './support/doors.js';
import {
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  PUBLIC_BASE_URL,
  registerTestPartner,
  type TestPartner,
  type TestService,
} from './support/service.js';

/**
 * What the service writes to its log, read back: request lines name the caller (client id, never a member) and
 * a refusal's reason code; batch workers log each job's start and end with ids and counts. No line carries a
 * name, birth date or identifier of the people asked about, whatever the door.
 */
const lines: Record<string, unknown>[] = [];
let raw = '';
const capture = {
  write(chunk: string) {
    raw += chunk;
    for (const line of chunk.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
  },
};

let ts: TestService;
let database: TestDatabase;
let partner: TestPartner;

beforeAll(async () => {
  database = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    PUBLIC_BASE_URL,
    REDIS_KEY_PREFIX: `mm-test-${randomBytes(6).toString('hex')}:`,
    BATCH_CHUNK_SIZE: '2',
  });
  const service = await startService(config, createLogger('debug', capture));
  ts = { url: service.url, config, service, database, stop: async () => undefined };
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW]);
  partner = await registerTestPartner(ts);
});
afterAll(async () => {
  await ts?.service.close();
  await database?.drop();
});

const requestLine = (method: string, path: string) =>
  lines.findLast((l) => (l.req as { method?: string; path?: string } | undefined)?.method === method && (l.req as { path?: string }).path === path);

/** Everything the requests below carry about a person: none of it may reach the log. */
const PHI = ['Patricia', 'Person', '1974-12-25', '55678', 'DH10001235', 'Nobody', 'Unknown', '1950-02-03', 'Robin', 'Roster', '1988-08-08', 'RR-4242'];

describe('request logs', () => {
  it('name the client and, for a refusal, its reason code', async () => {
    const token = await partnerToken(ts, partner);
    expect((await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(200);
    const matched = requestLine('POST', '/fhir/Patient/$member-match');
    expect(matched).toMatchObject({ clientId: partner.clientId, actorClass: 'partner', route: '/fhir/Patient/$member-match', res: { statusCode: 200 } });
    expect(matched).not.toHaveProperty('reason');

    const nobody: TestPerson = { given: 'Nobody', family: 'Unknown', birthDate: '1950-02-03', gender: 'female', card: 'DH10001235' };
    expect((await postMemberMatch(ts, token, memberMatchRequest(nobody, NEW_PAYER_ORG))).status).toBe(422);
    expect(requestLine('POST', '/fhir/Patient/$member-match')).toMatchObject({ clientId: partner.clientId, reason: 'no-match', res: { statusCode: 422 } });

    expect((await postMemberMatch(ts, undefined, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(401);
    const anonymous = requestLine('POST', '/fhir/Patient/$member-match');
    expect(anonymous).toMatchObject({ reason: 'token-missing', res: { statusCode: 401 } });
    expect(anonymous).not.toHaveProperty('clientId');

    await fetch(`${ts.url}/fhir/Patient?identifier=55678&birthdate=1974-12-25`, { headers: { authorization: `Bearer ${token}` } });
    expect(requestLine('GET', '/fhir/Patient')).toMatchObject({ clientId: partner.clientId, route: '/fhir/Patient' });
  });

  it('log each batch job’s start and end with ids, kind, counts and duration', async () => {
    const workers = await startWorkers(ts.config, ts.service.deps.db, createLogger('debug', capture));
    try {
      const robin: TestPerson = { given: 'Robin', family: 'Roster', birthDate: '1988-08-08', gender: 'male', card: 'RR-4242' };
      const patricia: TestPerson = { given: 'Patricia', family: 'Person', birthDate: '1974-12-25', gender: 'female', card: '55678' };
      const results = await reconcileRoster(ts, await workloadToken(ts, 'system:serviceaccount:batch:logs'), rosterOf([robin, patricia, { ...robin, given: 'Nobody' }]));
      expect(results).toHaveLength(3);
    } finally {
      await workers.stop();
    }
    const started = lines.find((l) => l.msg === 'batch job started');
    expect(started).toMatchObject({ kind: 'roster-reconcile', totalRows: 3, chunks: 2 });
    const finished = lines.find((l) => l.msg === 'batch job finished');
    expect(finished).toMatchObject({ batchJob: started!.batchJob, kind: 'roster-reconcile', state: 'completed', totalRows: 3, rowsDone: 3 });
    expect(typeof finished!.durationMs).toBe('number');
    expect(Object.values(finished!.counts as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(3);
    expect(lines.filter((l) => l.msg === 'batch chunk done')).toHaveLength(2);
  });

  it('carry no name, birth date or identifier of anyone asked about', () => {
    expect(lines.length).toBeGreaterThan(10);
    for (const value of PHI) expect(raw, value).not.toContain(value);
  });
});

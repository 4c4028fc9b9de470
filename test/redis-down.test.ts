import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { createReviewQueue, relayOnce, CASE_JOB } from '../src/review/outbox-relay.js';
import { startWorkers } from '../src/workers.js';
import { createLogger } from '../src/logger.js';
import { eventually, importRows, NEW_PAYER_ORG, postMemberMatch, startTestService, type TestService, HL7_EXAMPLE_MEMBER_ROW } from './support/service.js';
import type { Coverage, Patient } from 'fhir/r4.js';

/** With Redis unreachable, matching still answers and review cases still persist; the relay catches up later. */
let ts: TestService;
const prefix = `mm-test-${randomBytes(6).toString('hex')}:`;

beforeAll(async () => {
  ts = await startTestService({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: prefix }); // nothing listens on port 1
  await importRows(ts, [
    '30001,L200,self,Sam,,Lee,,2001-01-01,male,,,,,,,CL1,,,,',
    '30002,L200,child,Sam,,Lee,,2001-01-01,male,,,,,,,CL2,,,,',
    HL7_EXAMPLE_MEMBER_ROW,
  ]);
});
afterAll(() => ts?.stop());

/** An access token signed directly with the service key: the token endpoint itself needs Redis (replay cache). */
async function accessToken(scope = 'system/Patient.$member-match'): Promise<string> {
  const client = await registerPartnerClient(ts.service.deps.db, { name: 'p', organization: NEW_PAYER_ORG, jwks: { keys: [] }, scopes: scope.split(' ') });
  const key = ts.service.deps.signingKey;
  return new SignJWT({ client_id: client.clientId, org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`, actor_class: 'partner', auth_protocol: 'private_key_jwt', scope })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl).setAudience(ts.config.fhirBaseUrl)
    .setSubject(client.clientId).setJti(randomUUID()).setIssuedAt().setExpirationTime('5m').sign(key.privateKey);
}

describe('with Redis down', () => {
  it('still matches, and still opens review cases that are queued once Redis is back', async () => {
    const token = await accessToken();
    expect((await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(200);

    const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
    const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as Patient;
    Object.assign(patient, { name: [{ family: 'Lee', given: ['Sam'] }], birthDate: '2001-01-01', gender: 'male', identifier: undefined });
    const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
    delete coverage.identifier;
    coverage.subscriberId = 'L200';
    const res = await postMemberMatch(ts, token, request);
    expect(res.status).toBe(422);
    expect(res.body.issue[0].details.coding[0].code).toBe('manual-review-required');
    const cases = await ts.service.deps.db.selectFrom('review_cases').select('id').execute();
    expect(cases).toHaveLength(1);

    const queue = createReviewQueue('redis://127.0.0.1:6379', prefix);
    try {
      expect(await relayOnce(ts.service.deps.db, queue)).toBe(1);
      expect(await relayOnce(ts.service.deps.db, queue)).toBe(0);
      const jobs = await queue.getJobs(['waiting', 'delayed']);
      expect(jobs.filter((j) => j.name === CASE_JOB).map((j) => j.id)).toEqual([cases[0]!.id]);
    } finally {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  });

  it('still accepts a bulk match, which the workers\' dispatcher queues once Redis is reachable', async () => {
    const token = await accessToken('system/Group.$bulk-member-match');
    const single = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
    const kick = await fetch(`${ts.url}/fhir/Group/$bulk-member-match`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', prefer: 'respond-async' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'MemberBundle', part: single.parameter }] }),
    });
    expect(kick.status).toBe(202);
    const job = await ts.service.deps.db.selectFrom('batch_jobs').select(['id', 'dispatched_at', 'state']).executeTakeFirstOrThrow();
    expect(job).toMatchObject({ dispatched_at: null, state: 'queued' });

    // The workers can reach Redis (as when it comes back): their dispatcher hands the job over and it runs.
    const workers = await startWorkers({ ...ts.config, redisUrl: 'redis://127.0.0.1:6379' }, ts.service.deps.db, createLogger('silent'));
    try {
      const done = await eventually(async () => {
        const row = await ts.service.deps.db.selectFrom('batch_jobs').select(['state', 'matched', 'dispatched_at']).where('id', '=', job.id).executeTakeFirstOrThrow();
        return row.state === 'completed' ? row : undefined;
      });
      expect(done.matched).toBe(1);
      expect(done.dispatched_at).toBeInstanceOf(Date);
    } finally {
      await workers.stop();
    }
  }, 60_000);
});

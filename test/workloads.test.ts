import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePartnerKeyPair, type PartnerKeyPair } from '../src/cli/partner-tools.js';
import { exchangeWorkloadToken, mintWorkloadToken } from '../src/cli/workload-tools.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { disableWorkload, registerWorkload, type WorkloadIdentity } from '../src/identity/workloads.js';
import { TOKEN_EXCHANGE_GRANT } from '../src/identity/grants/token-exchange.js';
import { latestAuditEvents, NEW_PAYER_ORG, postMemberMatch, startTestService, type TestService } from './support/service.js';

/** Workloads (batch jobs) exchange their platform JWT for an access token: RFC 8693, no static secrets. */
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SUBJECT = 'system:serviceaccount:batch:roster-reconcile';
const AUDIENCE = 'member-match';
let ts: TestService;
let issuerKeys: PartnerKeyPair;
let workload: WorkloadIdentity;
let tokenUrl: string;

beforeAll(async () => {
  ts = await startTestService();
  tokenUrl = `${ts.url}/oauth/token`;
  issuerKeys = await generatePartnerKeyPair('ES384');
  workload = await registerWorkload(ts.service.deps.db, {
    name: 'nightly roster reconcile',
    issuer: ISSUER,
    subject: SUBJECT,
    audience: AUDIENCE,
    jwks: issuerKeys.publicJwks,
    scopes: ['roster:reconcile', 'system/Group.$bulk-member-match'],
  });
});
afterAll(() => ts?.stop());

const mint = (overrides: Partial<Parameters<typeof mintWorkloadToken>[0]> = {}) =>
  mintWorkloadToken({ issuer: ISSUER, subject: SUBJECT, audience: AUDIENCE, privateJwk: issuerKeys.privateJwk, ...overrides });

async function refusedWith(subjectToken: string, code: string, oauthError = 'invalid_grant', scope?: string) {
  const res = await exchangeWorkloadToken(tokenUrl, subjectToken, scope);
  expect(res.status).toBe(400);
  expect(res.body.error).toBe(oauthError);
  const [event] = await latestAuditEvents(ts, 1);
  expect(event).toMatchObject({ operation: 'token', outcome: 'failure', reason_code: code });
}

describe('workload token exchange', () => {
  it('issues a short-lived workload access token and audits the actor class and protocol', async () => {
    const res = await exchangeWorkloadToken(tokenUrl, await mint({ expiresIn: 120 }), 'roster:reconcile');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'bearer', scope: 'roster:reconcile', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
    expect(res.body.expires_in as number).toBeLessThanOrEqual(120); // never outlives the subject token
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'token', outcome: 'success', actor_class: 'workload', client_id: workload.workloadId, reason_code: 'token-issued' });
    expect(event!.details).toMatchObject({ actorSubject: SUBJECT, authProtocol: 'token-exchange' });
  });

  it('refuses an untrusted issuer, an unmapped subject, an expired or wrongly addressed subject token', async () => {
    await refusedWith(await mint({ issuer: 'https://evil.example' }), 'workload-issuer-untrusted');
    await refusedWith(await mint({ subject: 'system:serviceaccount:batch:other' }), 'workload-subject-unknown');
    await refusedWith(await mint({ expiresIn: -60 }), 'subject-token-expired');
    await refusedWith(await mint({ audience: 'someone-else' }), 'subject-token-bad-aud');
  });

  it('refuses a subject token signed by another key, or HMAC-signed with the public key (algorithm confusion)', async () => {
    const stranger = await generatePartnerKeyPair('ES384');
    await refusedWith(await mint({ privateJwk: { ...stranger.privateJwk, kid: issuerKeys.privateJwk.kid } }), 'subject-token-bad-signature');
    const publicAsSecret = new TextEncoder().encode(JSON.stringify(issuerKeys.publicJwks.keys[0]));
    const hmac = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: issuerKeys.privateJwk.kid })
      .setIssuer(ISSUER).setSubject(SUBJECT).setAudience(AUDIENCE).setExpirationTime('5m')
      .sign(publicAsSecret);
    await refusedWith(hmac, 'subject-token-alg-not-allowed');
  });

  it('refuses scopes the workload was not granted, and an unsupported subject token type', async () => {
    await refusedWith(await mint(), 'scope-not-granted', 'invalid_scope', 'system/Patient.$member-match');
    const res = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await mint(), subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('is refused by policy on partner actions, with the decision in the audit trail', async () => {
    const token = (await exchangeWorkloadToken(tokenUrl, await mint())).body.access_token as string;
    const res = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(res.status).toBe(403);
    expect(res.body.issue[0].details.coding[0].code).toBe('actor-class-not-allowed');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ actor_class: 'workload', http_status: 403 });
    expect(event!.details).toMatchObject({ policy: { decision: 'deny', policies: ['partner-actions-are-for-partners'] } });
  });

  it('stops a disabled workload: new exchanges at once, issued tokens within 5 seconds', async () => {
    const other = await registerWorkload(ts.service.deps.db, { name: 'temp', issuer: ISSUER, subject: 'system:serviceaccount:batch:temp', audience: AUDIENCE, jwks: issuerKeys.publicJwks, scopes: ['roster:reconcile'] });
    const token = (await exchangeWorkloadToken(tokenUrl, await mint({ subject: other.subject }))).body.access_token as string;
    const before = await postMemberMatch(ts, token, hrexExampleRequest());
    expect(before.status).toBe(403); // authenticated, refused by policy
    await disableWorkload(ts.service.deps.db, other.workloadId);
    await refusedWith(await mint({ subject: other.subject }), 'workload-disabled');
    await new Promise((r) => setTimeout(r, 2_500));
    const after = await postMemberMatch(ts, token, hrexExampleRequest());
    expect(after.status).toBe(401);
  });
});

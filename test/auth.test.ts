import { randomUUID } from 'node:crypto';
import { generateKeyPair, importJWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { requestAccessToken, signClientAssertion, generatePartnerKeyPair } from '../src/cli/partner-tools.js';
import { disablePartnerClient } from '../src/identity/partner-clients.js';
import {
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerAssertion,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestPartner,
  type TestService,
} from './support/service.js';

let ts: TestService;
let partner: TestPartner;
const example = () => hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });

beforeAll(async () => {
  ts = await startTestService();
  partner = await registerTestPartner(ts);
});
afterAll(async () => {
  await ts?.stop();
});

async function tokenRequest(form: Record<string, string>, contentType = 'application/x-www-form-urlencoded') {
  const response = await fetch(`${ts.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: contentType.includes('json') ? JSON.stringify(form) : new URLSearchParams(form),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const baseForm = (assertion: string, scope = 'system/Patient.$member-match') => ({
  grant_type: 'client_credentials',
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: assertion,
  scope,
});

describe('POST /oauth/token (SMART Backend Services)', () => {
  it('issues a short-lived access token for a valid ES384 assertion', async () => {
    const res = await tokenRequest(baseForm(await partnerAssertion(ts, partner)));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'bearer', scope: 'system/Patient.$member-match' });
    expect(res.body.expires_in).toBeLessThanOrEqual(300);
    const [, payload] = (res.body.access_token as string).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    expect(claims).toMatchObject({ aud: ts.config.fhirBaseUrl, client_id: partner.clientId, actor_class: 'partner', org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}` });
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(300);
    expect(claims.jti).toBeTypeOf('string');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'token', outcome: 'success', client_id: partner.clientId, actor_class: 'partner' });
  });

  it('accepts RS384 clients', async () => {
    const rsa = await registerTestPartner(ts, { alg: 'RS384' });
    const res = await tokenRequest(baseForm(await partnerAssertion(ts, rsa)));
    expect(res.status).toBe(200);
  });

  it('publishes its signing keys and SMART configuration', async () => {
    const jwks: any = await (await fetch(`${ts.url}/oauth/jwks`)).json();
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', alg: 'ES384' });
    expect(jwks.keys[0].d).toBeUndefined();
    const smart: any = await (await fetch(`${ts.url}/fhir/.well-known/smart-configuration`)).json();
    expect(smart).toMatchObject({
      token_endpoint: ts.config.tokenUrl,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
    });
  });

  const refusals: [string, () => Promise<Record<string, string>>, number, string, string][] = [
    ['a replayed assertion', async () => {
      const assertion = await partnerAssertion(ts, partner, { jti: randomUUID() });
      await tokenRequest(baseForm(assertion));
      return baseForm(assertion);
    }, 401, 'invalid_client', 'assertion-replayed'],
    ['an assertion expiring 10 minutes ahead', async () => baseForm(await partnerAssertion(ts, partner, { expiresIn: 600 })), 401, 'invalid_client', 'assertion-exp-too-far'],
    ['an expired assertion', async () => baseForm(await partnerAssertion(ts, partner, { expiresIn: -60 })), 401, 'invalid_client', 'assertion-expired'],
    ['an unknown kid', async () => baseForm(await partnerAssertion(ts, partner, { kid: 'not-registered' })), 401, 'invalid_client', 'assertion-unknown-kid'],
    ['a key the client never registered', async () => {
      const stranger = await generatePartnerKeyPair();
      return baseForm(await partnerAssertion(ts, partner, { privateJwk: { ...stranger.privateJwk, kid: partner.keys.privateJwk.kid! } }));
    }, 401, 'invalid_client', 'assertion-bad-signature'],
    ['the wrong audience', async () => baseForm(await partnerAssertion(ts, partner, { tokenUrl: 'https://elsewhere.example/token' })), 401, 'invalid_client', 'assertion-bad-aud'],
    ['an unknown client', async () => baseForm(await signClientAssertion({ clientId: 'mm-nobody', tokenUrl: ts.config.tokenUrl, privateJwk: partner.keys.privateJwk })), 401, 'invalid_client', 'unknown-client'],
    ['an unsigned (alg none) assertion', async () => baseForm(new UnsecuredJWT({ jti: randomUUID() }).setIssuer(partner.clientId).setSubject(partner.clientId).setAudience(ts.config.tokenUrl).setExpirationTime('2m').encode()), 401, 'invalid_client', 'assertion-no-kid'],
    ['an HS256 assertion', async () => {
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: partner.keys.privateJwk.kid! }).setIssuer(partner.clientId).setSubject(partner.clientId).setAudience(ts.config.tokenUrl).setJti(randomUUID()).setExpirationTime('2m').sign(new TextEncoder().encode('x'.repeat(32)));
      return baseForm(jwt);
    }, 401, 'invalid_client', 'assertion-alg-not-allowed'],
    ['iss differing from sub', async () => {
      const { privateJwk } = partner.keys;
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: privateJwk.kid! }).setIssuer(partner.clientId).setSubject('someone-else').setAudience(ts.config.tokenUrl).setJti(randomUUID()).setExpirationTime('2m').sign(await importJWK(privateJwk, 'ES384'));
      return baseForm(jwt);
    }, 401, 'invalid_client', 'assertion-bad-sub'],
    ['a scope never granted', async () => baseForm(await partnerAssertion(ts, partner), 'system/Patient.$member-match system/Claim.rs'), 400, 'invalid_scope', 'scope-not-granted'],
    ['a missing scope', async () => { const f = baseForm(await partnerAssertion(ts, partner)); delete (f as Partial<typeof f>).scope; return f; }, 400, 'invalid_request', 'missing-scope'],
    ['another grant type', async () => ({ ...baseForm(await partnerAssertion(ts, partner)), grant_type: 'password' }), 400, 'unsupported_grant_type', 'unsupported-grant-type'],
    ['a malformed assertion', async () => baseForm('not.a.jwt'), 401, 'invalid_client', 'assertion-malformed'],
  ];

  it.each(refusals)('refuses %s', async (_label, form, status, error, reasonCode) => {
    const res = await tokenRequest(await form());
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(error);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'token', outcome: 'failure', http_status: status, reason_code: reasonCode });
  });

  it('refuses a JSON body with invalid_request', async () => {
    const res = await tokenRequest(baseForm('x'), 'application/json');
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });
});

describe('bearer tokens on /fhir', () => {
  const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

  it('refuses a request without a token', async () => {
    const res = await postMemberMatch(ts, undefined, example());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
    expect(res.body.resourceType).toBe('OperationOutcome');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'member-match', outcome: 'failure', reason_code: 'token-missing', actor_class: null });
  });

  it('refuses an expired token', async () => {
    const key = ts.service.deps.signingKey;
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ client_id: partner.clientId, org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`, actor_class: 'partner', scope: 'system/Patient.$member-match' })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl).setAudience(ts.config.fhirBaseUrl)
      .setSubject(partner.clientId).setJti(randomUUID()).setIssuedAt(now - 400).setExpirationTime(now - 100).sign(key.privateKey);
    const res = await postMemberMatch(ts, expired, example());
    expect(res.status).toBe(401);
    expect(reason(res.body)).toBe('token-expired');
  });

  it('refuses a token once it expires, though it was accepted (and its verification kept) before', async () => {
    const key = ts.service.deps.signingKey;
    const now = Math.floor(Date.now() / 1000);
    const shortLived = await new SignJWT({
      client_id: partner.clientId,
      org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`,
      actor_class: 'partner',
      auth_protocol: 'private_key_jwt',
      scope: 'system/Patient.$member-match',
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl).setAudience(ts.config.fhirBaseUrl)
      .setSubject(partner.clientId).setJti(randomUUID()).setIssuedAt(now).setExpirationTime(now + 2).sign(key.privateKey);
    expect((await postMemberMatch(ts, shortLived, example())).status).not.toBe(401);
    await new Promise((resolve) => setTimeout(resolve, (now + 2) * 1000 - Date.now() + 50));
    const res = await postMemberMatch(ts, shortLived, example());
    expect(res.status).toBe(401);
    expect(reason(res.body)).toBe('token-expired');
  });

  it('refuses a token for another audience', async () => {
    const key = ts.service.deps.signingKey;
    const other = await new SignJWT({ client_id: partner.clientId, org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`, actor_class: 'partner', scope: 'system/Patient.$member-match' })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl).setAudience('https://other.example/fhir')
      .setSubject(partner.clientId).setJti(randomUUID()).setIssuedAt().setExpirationTime('5m').sign(key.privateKey);
    const res = await postMemberMatch(ts, other, example());
    expect(res.status).toBe(401);
  });

  it('refuses a token signed by an unknown key', async () => {
    const { privateKey } = await generateKeyPair('ES384');
    const forged = await new SignJWT({ client_id: partner.clientId, org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`, actor_class: 'partner', scope: 'system/Patient.$member-match' })
      .setProtectedHeader({ alg: 'ES384', kid: ts.service.deps.signingKey.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl).setAudience(ts.config.fhirBaseUrl)
      .setSubject(partner.clientId).setJti(randomUUID()).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const res = await postMemberMatch(ts, forged, example());
    expect(res.status).toBe(401);
  });

  describe('access tokens forged or misused', () => {
    const claims = () => ({ client_id: partner.clientId, org: `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`, actor_class: 'partner', auth_protocol: 'private_key_jwt', scope: 'system/Patient.$member-match' });
    const sign = (build: (jwt: SignJWT) => SignJWT) => {
      const key = ts.service.deps.signingKey;
      return build(new SignJWT(claims()).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).setAudience(ts.config.fhirBaseUrl)
        .setSubject(partner.clientId).setJti(randomUUID()).setIssuedAt().setExpirationTime('5m')).sign(key.privateKey);
    };
    const cases: [string, () => Promise<string>][] = [
      ['not yet valid (nbf ahead)', () => sign((jwt) => jwt.setIssuer(ts.config.publicBaseUrl).setNotBefore('10m'))],
      ['from another issuer', () => sign((jwt) => jwt.setIssuer('https://issuer.evil.example'))],
      ['HMAC-signed with our public key (algorithm confusion)', async () => {
        const secret = new TextEncoder().encode(JSON.stringify(ts.service.deps.signingKey.publicJwk));
        return new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: ts.service.deps.signingKey.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl)
          .setAudience(ts.config.fhirBaseUrl).setSubject(partner.clientId).setJti(randomUUID()).setExpirationTime('5m').sign(secret);
      }],
      ['claiming another actor class', () => sign((jwt) => jwt.setIssuer(ts.config.publicBaseUrl)).then(async () => {
        const key = ts.service.deps.signingKey;
        return new SignJWT({ ...claims(), actor_class: 'human' }).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).setIssuer(ts.config.publicBaseUrl)
          .setAudience(ts.config.fhirBaseUrl).setSubject(partner.clientId).setJti(randomUUID()).setExpirationTime('5m').sign(key.privateKey);
      })],
    ];
    for (const [name, make] of cases) {
      it(`refuses a token ${name}, and audits the refusal`, async () => {
        const res = await postMemberMatch(ts, await make(), example());
        expect(res.status).toBe(401);
        const [event] = await latestAuditEvents(ts, 1);
        expect(event).toMatchObject({ outcome: 'failure', http_status: 401, operation: 'member-match' });
      });
    }
  });

  it('refuses an alg:none token', async () => {
    const unsigned = new UnsecuredJWT({ client_id: partner.clientId, org: 'x|y', actor_class: 'partner', scope: 'system/Patient.$member-match' })
      .setIssuer(ts.config.publicBaseUrl).setAudience(ts.config.fhirBaseUrl).setSubject(partner.clientId).setJti(randomUUID()).setExpirationTime('5m').encode();
    const res = await postMemberMatch(ts, unsigned, example());
    expect(res.status).toBe(401);
  });

  it('answers 403 when the token lacks the operation scope', async () => {
    const readOnly = await partnerToken(ts, partner, 'system/Patient.rs');
    const res = await postMemberMatch(ts, readOnly, example());
    expect(res.status).toBe(403);
    expect(reason(res.body)).toBe('scope-missing');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ outcome: 'failure', http_status: 403, client_id: partner.clientId });
    // The policy decision is in the audit event: version, determining policy, reason.
    expect(event!.details).toMatchObject({
      policy: { action: 'submit-member-match', decision: 'deny', policies: ['submit-member-match-needs-scope'], reason: 'scope-missing', version: expect.stringMatching(/^[0-9a-f]{16}$/) },
    });
  });

  it('records the policy decision for an allowed request too', async () => {
    const token = await partnerToken(ts, partner);
    await postMemberMatch(ts, token, example());
    const [event] = await latestAuditEvents(ts, 1);
    expect(event!.details).toMatchObject({
      policy: { action: 'submit-member-match', decision: 'allow', policies: ['partner-submit-member-match'], reason: 'ok' },
    });
  });

  it('stops honouring issued tokens within 5 seconds of the client being disabled', async () => {
    const victim = await registerTestPartner(ts);
    const token = await partnerToken(ts, victim);
    expect((await postMemberMatch(ts, token, example())).status).not.toBe(401);
    await disablePartnerClient(ts.service.deps.db, victim.clientId);
    const disabledAt = Date.now();
    let status = 0;
    while (Date.now() - disabledAt < 5_000) {
      status = (await postMemberMatch(ts, token, example())).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(401);
    expect(Date.now() - disabledAt).toBeLessThan(5_000);
    const fresh = await requestAccessToken(`${ts.url}/oauth/token`, await partnerAssertion(ts, victim), 'system/Patient.rs');
    expect(fresh.status).toBe(401);
  });
});

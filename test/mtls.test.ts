import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair, signClientAssertion, type PartnerKeyPair } from '../src/cli/partner-tools.js';
import { CLIENT_ASSERTION_TYPE } from '../src/identity/grants/client-credentials.js';
import { registerPartnerClient, type PartnerClient } from '../src/identity/partner-clients.js';
import { importRows, latestAuditEvents, NEW_PAYER_ORG, postMemberMatch, startTestService, type TestService, HL7_EXAMPLE_MEMBER_ROW } from './support/service.js';
import { createTestPki, type TestPki } from './support/tls.js';

/** Mutual TLS (RFC 8705): tokens issued over a verified client certificate work only over that certificate. */
let ts: TestService;
let pki: TestPki;
let keys: PartnerKeyPair;
let client: PartnerClient;

beforeAll(async () => {
  pki = createTestPki(['partner-a', 'partner-b']);
  ts = await startTestService({ TLS_PORT: '0', TLS_CERT_FILE: pki.serverCert, TLS_KEY_FILE: pki.serverKey, TLS_CLIENT_CA_FILE: pki.caCert });
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
  ]);
  keys = await generatePartnerKeyPair('ES384');
  client = await registerPartnerClient(ts.service.deps.db, {
    name: 'mTLS partner',
    organization: NEW_PAYER_ORG,
    jwks: keys.publicJwks,
    scopes: ['system/Patient.$member-match', 'system/Patient.rs'],
    tlsBound: true,
  });
});
afterAll(() => ts?.stop());

function tlsCall(
  method: string,
  path: string,
  options: { cert?: { cert: Buffer; key: Buffer }; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: any }> {
  const url = new URL(path, ts.service.tlsUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers: options.headers, ca: readFileSync(pki.caCert), ...(options.cert ?? {}) },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function tokenOver(cert: { cert: Buffer; key: Buffer } | undefined) {
  const assertion = await signClientAssertion({ clientId: client.clientId, tokenUrl: ts.config.tokenUrl, privateJwk: keys.privateJwk });
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    scope: 'system/Patient.$member-match',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: assertion,
  }).toString();
  return tlsCall('POST', '/oauth/token', { cert, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
}

const matchOver = (token: string, cert?: { cert: Buffer; key: Buffer }) =>
  tlsCall('POST', '/fhir/Patient/$member-match', {
    cert,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: JSON.stringify(hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' })),
  });

describe('mutual TLS and certificate-bound tokens', () => {
  it('binds the token to the client certificate it was issued over, and honours it over that certificate', async () => {
    const res = await tokenOver(pki.client('partner-a'));
    expect(res.status).toBe(200);
    expect((decodeJwt(res.body.access_token).cnf as Record<string, string>)['x5t#S256']).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await matchOver(res.body.access_token, pki.client('partner-a'))).status).toBe(200);
  });

  it('refuses a bound token over another certificate, without one, and over plain HTTP', async () => {
    const token = (await tokenOver(pki.client('partner-a'))).body.access_token as string;
    const otherCert = await matchOver(token, pki.client('partner-b'));
    expect(otherCert.status).toBe(401);
    expect(otherCert.body.issue[0].details.coding[0].code).toBe('token-binding-mismatch');
    expect((await matchOver(token)).status).toBe(401);
    const plain = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(plain.status).toBe(401);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ outcome: 'failure', http_status: 401, reason_code: 'token-binding-mismatch' });
  });

  it('issues no token to an mTLS client without a verified client certificate', async () => {
    const without = await tokenOver(undefined);
    expect(without.status).toBe(401);
    expect(without.body.error).toBe('invalid_client');
    const stranger = await tokenOver(pki.stranger);
    expect(stranger.status).toBe(401);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'token', outcome: 'failure', reason_code: 'client-certificate-required' });
  });
});

import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createHumanVerifier, devIdpToken } from '../src/identity/humans.js';
import { importRows, latestAuditEvents, startTestService, type TestService, HL7_EXAMPLE_MEMBER_ROW } from './support/service.js';

/** Staff (humans) authenticate with OpenID Connect; here the development IdP stands in for the real one. */
let ts: TestService;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
  ]);
});
afterAll(() => ts?.stop());

const staffToken = (user: string, roles: string[]) => devIdpToken(ts.service.deps.db, ts.config, user, roles);
async function call(method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${ts.url}/admin${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

describe('staff endpoints', () => {
  it('lets an administrator opt a member out, audited with the policy decision and the actor', async () => {
    const res = await call('PUT', '/consent-registry/55678', await staffToken('alice', ['admin']), { status: 'opted-out' });
    expect(res).toMatchObject({ status: 200, body: { status: 'opted-out' } });
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'consent-registry', actor_class: 'human', client_id: 'human:alice', reason_code: 'opted-out' });
    expect(event!.details).toMatchObject({ authProtocol: 'oidc', policy: { decision: 'allow', policies: ['admins-administer'] } });
    const list = await call('GET', '/consent-registry', await staffToken('alice', ['admin']));
    expect(list.body).toEqual([expect.objectContaining({ memberId: '55678', status: 'opted-out', source: 'admin:alice' })]);
    expect((await call('DELETE', '/consent-registry/55678', await staffToken('alice', ['admin']))).body).toEqual({ status: 'opted-in' });
  });

  it('refuses a reviewer the consent registry, naming the missing role, and audits the denial', async () => {
    const res = await call('PUT', '/consent-registry/55678', await staffToken('bob', ['reviewer']), { status: 'revoked' });
    expect(res.status).toBe(403);
    expect(reason(res.body)).toBe('role-missing');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ outcome: 'failure', http_status: 403, client_id: 'human:bob' });
    expect(event!.details).toMatchObject({ policy: { decision: 'deny', policies: ['administer-needs-admin-role'] } });
  });

  it('lets an auditor verify the audit chain, and not a reviewer', async () => {
    const ok = await call('GET', '/audit/verify', await staffToken('carol', ['auditor']));
    expect(ok).toMatchObject({ status: 200, body: { ok: true } });
    expect((await call('GET', '/audit/verify', await staffToken('bob', ['reviewer', 'supervisor']))).status).toBe(403);
  });

  it('refuses staff tokens that are missing, expired, from an untrusted issuer, or for another audience', async () => {
    expect((await call('GET', '/audit/verify', undefined)).status).toBe(401);
    const expired = await devIdpToken(ts.service.deps.db, ts.config, 'carol', ['auditor'], -60);
    expect(reason((await call('GET', '/audit/verify', expired)).body)).toBe('token-expired');
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'ES256' }).setIssuer('https://idp.evil.example').setSubject('mallory').setAudience('member-match').setExpirationTime('5m').sign(privateKey);
    expect(reason((await call('GET', '/audit/verify', forged)).body)).toBe('issuer-untrusted');
    const otherAudience = await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'ES256' }).setIssuer(`${ts.config.publicBaseUrl}/dev-idp`).setSubject('mallory').setAudience('member-match').setExpirationTime('5m').sign(privateKey);
    expect((await call('GET', '/audit/verify', otherAudience)).status).toBe(401); // right issuer name, wrong key
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ outcome: 'failure', http_status: 401 });
  });

  it('serves the queue dashboard to an admin through a session cookie, and to no one else', async () => {
    expect((await fetch(`${ts.url}/admin/queues/api/queues`)).status).toBe(401); // no session
    const reviewer = await fetch(`${ts.url}/admin/session`, { method: 'POST', headers: { authorization: `Bearer ${await staffToken('bob', ['reviewer'])}` } });
    expect(reviewer.status).toBe(403);
    const session = await fetch(`${ts.url}/admin/session`, { method: 'POST', headers: { authorization: `Bearer ${await staffToken('alice', ['admin'])}` } });
    expect(session.status).toBe(204);
    const cookie = session.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly; SameSite=Strict; Path=\/admin\/queues/);
    const api = await fetch(`${ts.url}/admin/queues/api/queues`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(api.status).toBe(200);
    expect(JSON.stringify(await api.json())).toContain('review');
    const page = await fetch(`${ts.url}/admin/queues`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect((await fetch(`${ts.url}/admin/queues/api/queues`, { headers: { cookie: 'mm_staff_session=forged.token.value' } })).status).toBe(401);
  });

  it('runs the development IdP only in development mode', async () => {
    const production = loadConfig({ DATABASE_URL: ts.database.url, PUBLIC_BASE_URL: ts.config.publicBaseUrl });
    await expect(devIdpToken(ts.service.deps.db, production, 'alice', ['admin'])).rejects.toThrow(/DEV_MODE/);
    // And a service outside development mode does not trust the development IdP's tokens.
    const verifier = await createHumanVerifier(ts.service.deps.db, production);
    await expect(verifier.verify(await staffToken('alice', ['admin']))).rejects.toMatchObject({ code: 'issuer-untrusted' });
  });
});

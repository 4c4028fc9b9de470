import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './support/service.js';

/**
 * The workbench's page and the development IdP's authorization-code endpoints over HTTP (the browser test,
 * test/workbench.browser.test.ts, drives the same flow in chromium).
 */
let ts: TestService;
let redirectUri: string;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
  redirectUri = `${ts.config.publicBaseUrl}/review/`;
});
afterAll(() => ts?.stop());

const get = (path: string) => fetch(`${ts.url}${path}`, { redirect: 'manual' });
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

function pkce() {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeParams(challenge: string, overrides: Record<string, string> = {}) {
  return new URLSearchParams({
    response_type: 'code',
    client_id: ts.config.oidc.audience,
    redirect_uri: redirectUri,
    state: 'state-1234567',
    nonce: 'nonce-1234567',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...overrides,
  });
}

/** Submits the login page's form as the browser would; answers the code from the redirect. */
async function signIn(challenge: string, user: string, roles: string[]): Promise<string> {
  const form = authorizeParams(challenge);
  form.set('user', user);
  for (const role of roles) form.append('roles', role);
  const res = await fetch(`${ts.url}/dev-idp/authorize`, { method: 'POST', body: form, redirect: 'manual' });
  expect(res.status).toBe(303);
  const location = new URL(res.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
  expect(location.searchParams.get('state')).toBe('state-1234567');
  expect(location.searchParams.get('iss')).toBe(`${ts.config.publicBaseUrl}/dev-idp`);
  return location.searchParams.get('code')!;
}

const redeem = (code: string, verifier: string) =>
  fetch(`${ts.url}/dev-idp/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: ts.config.oidc.audience, code_verifier: verifier }),
  });

describe('workbench page', () => {
  it('serves the page with a strict content security policy, and its script and stylesheet', async () => {
    const page = await get('/review/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await page.text()).toContain('<script type="module" src="app.js">');
    const script = await get('/review/app.js');
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await script.text()).length).toBeGreaterThan(10_000);
    expect((await get('/review/app.css')).headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('adds the trailing slash its relative URLs need, keeping the query', async () => {
    const res = await get('/review?code=abc&state=def');
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe('/review/?code=abc&state=def');
  });

  it('tells the page where staff sign in; the review API beside it still wants a token', async () => {
    const settings = (await (await get('/review/workbench-settings.json')).json()) as any;
    expect(settings).toMatchObject({ issuer: `${ts.config.publicBaseUrl}/dev-idp`, clientId: 'member-match', redirectUri, rolesClaim: 'roles' });
    expect((await get('/review/cases')).status).toBe(401);
  });
});

describe('development IdP: authorization code with PKCE', () => {
  it('publishes discovery for the workbench', async () => {
    const discovery = (await (await get('/dev-idp/.well-known/openid-configuration')).json()) as any;
    expect(discovery).toMatchObject({
      issuer: `${ts.config.publicBaseUrl}/dev-idp`,
      authorization_endpoint: `${ts.config.publicBaseUrl}/dev-idp/authorize`,
      token_endpoint: `${ts.config.publicBaseUrl}/dev-idp/token`,
      code_challenge_methods_supported: ['S256'],
    });
    const jwks = (await (await get('/dev-idp/jwks')).json()) as any;
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect((await get('/dev-idp/userinfo')).status).toBe(404);
  });

  it('shows a login page only for the registered client, redirect URI and an S256 challenge', async () => {
    const { challenge } = pkce();
    const page = await get(`/dev-idp/authorize?${authorizeParams(challenge)}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('name="user"');
    expect(html).toContain('value="state-1234567"');
    const elsewhere = await get(`/dev-idp/authorize?${authorizeParams(challenge, { redirect_uri: 'https://evil.example/review/' })}`);
    expect(elsewhere.status).toBe(400);
    expect(reason(await elsewhere.json())).toBe('redirect-uri-mismatch');
    const plain = await get(`/dev-idp/authorize?${authorizeParams(challenge, { code_challenge_method: 'plain' })}`);
    expect(plain.status).toBe(400);
  });

  it('trades a code once, for the verifier of its challenge, for an ID token the review API takes', async () => {
    const { verifier, challenge } = pkce();
    const code = await signIn(challenge, 'sue', ['supervisor']);
    const tokens = await redeem(code, verifier);
    expect(tokens.status).toBe(200);
    expect(tokens.headers.get('cache-control')).toBe('no-store');
    const body = (await tokens.json()) as any;
    expect(body.token_type).toBe('Bearer');
    expect(decodeJwt(body.id_token)).toMatchObject({ sub: 'sue', roles: ['supervisor'], nonce: 'nonce-1234567', aud: 'member-match' });
    const stats = await fetch(`${ts.url}/review/stats`, { headers: { authorization: `Bearer ${body.id_token}` } });
    expect(stats.status).toBe(200);

    const again = await redeem(code, verifier);
    expect(again.status).toBe(401);
    expect(reason(await again.json())).toBe('code-invalid');
  });

  it('refuses a wrong verifier, and the code is spent by the attempt', async () => {
    const { verifier, challenge } = pkce();
    const code = await signIn(challenge, 'sam', ['reviewer']);
    const wrong = await redeem(code, pkce().verifier);
    expect(wrong.status).toBe(401);
    expect(reason(await wrong.json())).toBe('pkce-mismatch');
    expect((await redeem(code, verifier)).status).toBe(401);
  });

  it('refuses a sign-in without a role or with an unknown one', async () => {
    const { challenge } = pkce();
    const form = authorizeParams(challenge);
    form.set('user', 'zed');
    form.append('roles', 'superuser');
    const res = await fetch(`${ts.url}/dev-idp/authorize`, { method: 'POST', body: form, redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(reason(await res.json())).toBe('sign-in-invalid');
  });
});

describe('without DEV_MODE', () => {
  it('has no development IdP, and the workbench names no issuer unless OIDC_ISSUER is set', { timeout: 60_000 }, async () => {
    const prod = await startTestService({});
    try {
      expect((await fetch(`${prod.url}/dev-idp/.well-known/openid-configuration`)).status).toBe(404);
      const settings = (await (await fetch(`${prod.url}/review/workbench-settings.json`)).json()) as any;
      expect(settings.issuer).toBeNull();
    } finally {
      await prod.stop();
    }
  });
});

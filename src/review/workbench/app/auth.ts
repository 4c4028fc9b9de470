/**
 * Staff sign-in: OpenID Connect authorization code with PKCE (S256), as a public browser client. The issuer
 * (the development IdP with DEV_MODE=true, otherwise OIDC_ISSUER) comes from the server's workbench settings and
 * its endpoints from discovery. The ID token is the review API's bearer token; it lives in sessionStorage (this
 * tab only, gone when the tab closes) and is never put in a URL. The signature is the server's to check: here
 * the token is only read for the name and roles to show, after its nonce, issuer and audience are compared.
 */

export interface Settings {
  issuer: string | null;
  clientId: string;
  redirectUri: string;
  rolesClaim: string;
  leaseSeconds: number;
}

export interface Session {
  token: string;
  user: string;
  roles: string[];
  /** Epoch milliseconds. */
  expiresAt: number;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
}

interface Pending {
  state: string;
  verifier: string;
  nonce: string;
}

const SESSION_KEY = 'member-match.workbench.session';
const PENDING_KEY = 'member-match.workbench.sign-in';

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const randomString = (bytes = 32) => base64url(crypto.getRandomValues(new Uint8Array(bytes)));

async function s256(verifier: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
}

async function discover(issuer: string): Promise<Discovery> {
  const response = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the identity provider's discovery answered ${response.status}`);
  const discovery = (await response.json()) as Discovery;
  if (discovery.issuer !== issuer) throw new Error('the identity provider names a different issuer');
  return discovery;
}

export async function loadSettings(): Promise<Settings> {
  const response = await fetch('workbench-settings.json');
  if (!response.ok) throw new Error(`workbench settings answered ${response.status}`);
  return (await response.json()) as Settings;
}

/** Leaves for the identity provider's sign-in page. */
export async function startSignIn(settings: Settings): Promise<void> {
  if (!settings.issuer) throw new Error('no identity provider is configured (OIDC_ISSUER, or DEV_MODE=true)');
  const discovery = await discover(settings.issuer);
  const pending: Pending = { state: randomString(), verifier: randomString(48), nonce: randomString() };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: settings.redirectUri,
    scope: 'openid profile',
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(pending.verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

function decodePayload(token: string): Record<string, unknown> {
  const part = token.split('.')[1] ?? '';
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<string, unknown>;
}

/**
 * On the way back from the identity provider: trades the code for tokens. Answers undefined when this page
 * load is not a sign-in callback.
 */
export async function completeSignIn(settings: Settings): Promise<Session | undefined> {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return undefined;
  // The code leaves the address bar (and the history) at once.
  history.replaceState(null, '', location.pathname);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? 'null') as Pending | null;
  sessionStorage.removeItem(PENDING_KEY);
  if (params.has('error')) throw new Error(`the identity provider refused the sign-in (${params.get('error')})`);
  if (!pending || params.get('state') !== pending.state) throw new Error('the sign-in answer does not belong to this tab; sign in again');
  if (!settings.issuer) throw new Error('no identity provider is configured');
  // RFC 9207: an answer naming another issuer is a mix-up, not ours.
  if (params.has('iss') && params.get('iss') !== settings.issuer) throw new Error('the sign-in answer came from another issuer');
  const discovery = await discover(settings.issuer);
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: settings.redirectUri,
      client_id: settings.clientId,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`the identity provider's token endpoint answered ${response.status}`);
  const tokens = (await response.json()) as { id_token?: string };
  if (!tokens.id_token) throw new Error('the identity provider sent no ID token');
  const claims = decodePayload(tokens.id_token);
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.nonce !== pending.nonce || claims.iss !== settings.issuer || !audience.includes(settings.clientId)) {
    throw new Error('the ID token was not issued for this sign-in');
  }
  const roles = claims[settings.rolesClaim];
  const session: Session = {
    token: tokens.id_token,
    user: typeof claims.sub === 'string' ? claims.sub : '',
    roles: Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [],
    expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : Date.now() + 300_000,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

/** The session this tab signed in with, unless it expired. */
export function currentSession(): Session | undefined {
  const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
  if (!session || session.expiresAt <= Date.now()) {
    sessionStorage.removeItem(SESSION_KEY);
    return undefined;
  }
  return session;
}

export function signOut(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

import { createHash, randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { AuthenticationError, InvalidRequestError, NotFoundError } from '../../errors.js';
import { devIdpPublicJwks, devIdpToken, devIssuer, HUMAN_ROLES, staffActor } from '../../identity/humans.js';
import { formBody } from '../body.js';
import type { AppDeps } from '../deps.js';
import { auditAs, requestAudit } from '../request-context.js';

/**
 * The development identity provider's browser sign-in (DEV_MODE=true only): OpenID Connect discovery, an
 * authorization endpoint whose login page lets a developer pick a user and roles (no password: it stands in for
 * the organisation's IdP on a laptop), a token endpoint for the authorization-code grant with PKCE (S256 only,
 * as OAuth 2.1 asks of public clients), and the signing key. It signs with the same key as
 * `member-match dev-idp token`, so the service verifies its tokens like any other staff token.
 *
 * There is one client, the reviewer workbench: its id is OIDC_AUDIENCE (an ID token's audience is the client
 * it was issued to, and that is what the review API checks) and its only redirect URI is the workbench page.
 */
export const DEV_IDP_PATH = '/dev-idp';
const CODE_SECONDS = 60;
const TOKEN_SECONDS = 3600;

export function workbenchRedirectUri(deps: AppDeps): string {
  return `${deps.config.publicBaseUrl}/review/`;
}

/** Discovery, as an OIDC relying party (the workbench) reads it from any issuer. */
export function devIdpDiscovery(deps: AppDeps) {
  const issuer = devIssuer(deps.config);
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    scopes_supported: ['openid', 'profile'],
    token_endpoint_auth_methods_supported: ['none'],
    claims_supported: ['sub', 'name', 'nonce', deps.config.oidc.rolesClaim],
  };
}

// Opaque values the client chooses: bounded, and from the characters RFC 7636 and OIDC use.
const opaque = z.string().regex(/^[A-Za-z0-9._~-]{8,128}$/);
const authorizeParams = z.object({
  response_type: z.literal('code'),
  client_id: z.string(),
  redirect_uri: z.string(),
  state: opaque,
  nonce: opaque.optional(),
  code_challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  code_challenge_method: z.literal('S256'),
  scope: z.string().max(200).optional(),
});
type AuthorizeParams = z.infer<typeof authorizeParams>;
const signIn = z.object({
  user: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/),
  roles: z.array(z.enum(HUMAN_ROLES)).min(1),
});
const tokenForm = z.object({
  grant_type: z.literal('authorization_code'),
  code: opaque,
  redirect_uri: z.string(),
  client_id: z.string(),
  code_verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
});

interface IssuedCode {
  user: string;
  roles: string[];
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  nonce: string | undefined;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(params: AuthorizeParams): string {
  const hidden = Object.entries(params)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(String(value))}">`)
    .join('\n      ');
  const roles = HUMAN_ROLES.map(
    (role) => `<label><input type="checkbox" name="roles" value="${role}"${role === 'reviewer' ? ' checked' : ''}> ${role}</label>`,
  ).join('\n        ');
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Development sign-in — member-match</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #f4f5f7; margin: 0; }
    main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; border: 1px solid #c9ccd1; }
    h1 { font-size: 1.25rem; margin-top: 0; }
    fieldset { border: 1px solid #c9ccd1; margin: 1rem 0; }
    label { display: block; margin: .25rem 0; }
    input[type=text] { font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; border: 1px solid #5c6370; }
    button { font: inherit; padding: .5rem 1.25rem; background: #0b5cad; color: #fff; border: 0; border-radius: 4px; }
    :focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
    p.note { color: #4a4f57; font-size: .9rem; }
  </style>
</head>
<body>
  <main>
    <h1>Development identity provider</h1>
    <p class="note">DEV_MODE only: stands in for the organisation's OpenID Connect provider. No password.</p>
    <form method="post" action="authorize">
      ${hidden}
      <label for="user">User</label>
      <input id="user" name="user" type="text" required pattern="[A-Za-z0-9._@\\-]{1,64}" autocomplete="username" autofocus>
      <fieldset>
        <legend>Roles</legend>
        ${roles}
      </fieldset>
      <button type="submit" id="sign-in">Sign in</button>
    </form>
  </main>
</body>
</html>`;
}

export function devIdpRouter(deps: AppDeps): Router {
  const router = Router();
  const clientId = deps.config.oidc.audience;
  const redirectUri = workbenchRedirectUri(deps);
  const codeKey = (code: string) => `dev-idp:code:${code}`;

  /** The request must come from the workbench: a wrong client or redirect is never redirected to (RFC 6749 §4.1.2.1). */
  function checkClient(params: { client_id: string; redirect_uri: string }) {
    if (params.client_id !== clientId) throw new InvalidRequestError('client-unknown', 'unknown client_id');
    if (params.redirect_uri !== redirectUri) throw new InvalidRequestError('redirect-uri-mismatch', 'redirect_uri is not the registered one');
  }

  router.get('/.well-known/openid-configuration', (_req, res) => {
    res.json(devIdpDiscovery(deps));
  });

  router.get('/jwks', async (_req, res) => {
    res.json(await devIdpPublicJwks(deps.db));
  });

  router.get('/authorize', auditAs('dev-idp-authorize'), (req, res) => {
    const params = authorizeParams.safeParse(req.query);
    if (!params.success) throw new InvalidRequestError('authorize-invalid', 'response_type=code, client_id, redirect_uri, state and an S256 code_challenge are required');
    checkClient(params.data);
    requestAudit(res).written = true; // showing a login page changes nothing
    res
      .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(loginPage(params.data));
  });

  router.post('/authorize', auditAs('dev-idp-authorize'), ...formBody({ limit: '4kb', parameterLimit: 20 }), async (req: Request, res: Response) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const params = authorizeParams.safeParse(form);
    if (!params.success) throw new InvalidRequestError('authorize-invalid', 'the sign-in form lost its authorization request; start again');
    checkClient(params.data);
    const roles = form.roles === undefined ? [] : ([] as unknown[]).concat(form.roles);
    const person = signIn.safeParse({ user: form.user, roles });
    if (!person.success) throw new InvalidRequestError('sign-in-invalid', 'give a user name (letters, digits, . _ @ -) and at least one role');
    const code = randomBytes(32).toString('base64url');
    const issued: IssuedCode = {
      user: person.data.user,
      roles: person.data.roles,
      clientId,
      redirectUri,
      codeChallenge: params.data.code_challenge,
      nonce: params.data.nonce,
    };
    await deps.redis.set(codeKey(code), JSON.stringify(issued), 'EX', CODE_SECONDS);
    const actor = staffActor(deps.config, person.data.user, person.data.roles, 'dev-idp-code');
    requestAudit(res).actor = actor;
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 303, reasonCode: 'code-issued' });
    const target = new URL(redirectUri);
    target.searchParams.set('code', code);
    target.searchParams.set('state', params.data.state);
    target.searchParams.set('iss', devIssuer(deps.config));
    res.redirect(303, target.toString());
  });

  router.post('/token', auditAs('dev-idp-token'), ...formBody({ limit: '4kb', parameterLimit: 10 }), async (req, res) => {
    const form = tokenForm.safeParse(req.body ?? {});
    if (!form.success) throw new InvalidRequestError('token-request-invalid', 'grant_type=authorization_code, code, redirect_uri, client_id and code_verifier are required');
    checkClient(form.data);
    // Single use: taken and deleted at once, so a replayed code finds nothing.
    const stored = await deps.redis.getdel(codeKey(form.data.code));
    if (!stored) throw new AuthenticationError('code-invalid', 'the authorization code is unknown, used or expired');
    const issued = JSON.parse(stored) as IssuedCode;
    const challenge = createHash('sha256').update(form.data.code_verifier).digest('base64url');
    if (challenge !== issued.codeChallenge) throw new AuthenticationError('pkce-mismatch', 'code_verifier does not match the code_challenge');
    const idToken = await devIdpToken(deps.db, deps.config, issued.user, issued.roles, TOKEN_SECONDS, {
      ...(issued.nonce ? { nonce: issued.nonce } : {}),
      jti: randomBytes(16).toString('base64url'),
    });
    const audit = requestAudit(res);
    audit.actor = staffActor(deps.config, issued.user, issued.roles, 'dev-idp-token');
    await writeRequestAudit(deps.db, audit, { outcome: 'success', httpStatus: 200, reasonCode: 'token-issued' });
    // The review API takes the ID token as its bearer token (src/identity/humans.ts), so it is the access token too.
    res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache').json({
      access_token: idToken,
      id_token: idToken,
      token_type: 'Bearer',
      expires_in: TOKEN_SECONDS,
      scope: 'openid profile',
    });
  });

  router.use(auditAs('unknown'), () => {
    throw new NotFoundError('unknown-route', 'no such development IdP endpoint');
  });
  return router;
}

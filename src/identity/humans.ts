import { randomUUID } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { Config } from '../config.js';
import type { DbOrTx } from '../db/database.js';
import { AuthenticationError } from '../errors.js';
import type { Actor } from './actor.js';

/**
 * Review staff authenticate with the organisation's OpenID Connect provider: their bearer token is verified
 * against the configured issuer's JWKS and audience, and their roles come from a configured claim. For local
 * use a development identity provider (`member-match dev-idp token`) signs such tokens with a key kept in the
 * database — trusted only when DEV_MODE=true, and refusing to run otherwise.
 */

export const HUMAN_ROLES = ['reviewer', 'supervisor', 'auditor', 'admin'] as const;
export type HumanRole = (typeof HUMAN_ROLES)[number];
const HUMAN_TOKEN_ALGS = ['RS256', 'RS384', 'PS256', 'ES256', 'ES384', 'EdDSA'];
const DEV_IDP_ALG = 'ES256';
const DEV_IDP_SECRET = 'dev_idp_private_jwk';

export function devIssuer(config: Config): string {
  return `${config.publicBaseUrl}/dev-idp`;
}

async function devIdpKey(db: DbOrTx): Promise<JWK> {
  const existing = await db.selectFrom('service_secrets').select('value').where('name', '=', DEV_IDP_SECRET).executeTakeFirst();
  if (existing) return JSON.parse(existing.value) as JWK;
  const { privateKey } = await generateKeyPair(DEV_IDP_ALG, { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: DEV_IDP_ALG };
  await db.insertInto('service_secrets').values({ name: DEV_IDP_SECRET, value: JSON.stringify(jwk) }).onConflict((oc) => oc.column('name').doNothing()).execute();
  const row = await db.selectFrom('service_secrets').select('value').where('name', '=', DEV_IDP_SECRET).executeTakeFirstOrThrow();
  return JSON.parse(row.value) as JWK;
}

/** The development IdP's public signing key, for its JWKS endpoint (src/http/routes/dev-idp.ts). */
export async function devIdpPublicJwks(db: DbOrTx): Promise<{ keys: JWK[] }> {
  const { d: _d, ...publicJwk } = await devIdpKey(db);
  return { keys: [publicJwk] };
}

/**
 * Signs a development ID token for a user and roles; refuses unless development mode is on. `claims` adds
 * what an authorization-code sign-in needs besides (the client's nonce).
 */
export async function devIdpToken(
  db: DbOrTx,
  config: Config,
  user: string,
  roles: readonly string[],
  expiresInSeconds = 3600,
  claims: Record<string, string> = {},
): Promise<string> {
  if (!config.devMode) throw new Error('the development identity provider runs only with DEV_MODE=true');
  const jwk = await devIdpKey(db);
  const key = (await importJWK(jwk, DEV_IDP_ALG)) as CryptoKey;
  return new SignJWT({ ...claims, [config.oidc.rolesClaim]: [...roles], name: user })
    .setProtectedHeader({ alg: DEV_IDP_ALG, kid: jwk.kid ?? '', typ: 'JWT' })
    .setIssuer(devIssuer(config))
    .setSubject(user)
    .setAudience(config.oidc.audience)
    .setIssuedAt()
    .setExpirationTime(`${expiresInSeconds}s`)
    .sign(key);
}

/** A staff member as an Actor: only the roles we know are kept from whatever the token claims. */
export function staffActor(config: Config, subject: string, claimedRoles: unknown, tokenId: string): Actor {
  const roles = (Array.isArray(claimedRoles) ? claimedRoles : []).filter((r): r is HumanRole => (HUMAN_ROLES as readonly unknown[]).includes(r));
  return {
    actorClass: 'human',
    subject,
    clientId: `human:${subject}`,
    organization: config.ownOrganization,
    scopes: [],
    roles,
    purposeOfUse: undefined,
    protocol: 'oidc',
    tokenJti: tokenId,
  };
}

export interface HumanVerifier {
  /** Issuers whose tokens this verifier takes. */
  issuers: ReadonlySet<string>;
  verify(token: string): Promise<Actor>;
}

export async function createHumanVerifier(db: DbOrTx, config: Config): Promise<HumanVerifier> {
  const keySets = new Map<string, JWTVerifyGetKey>();
  if (config.oidc.issuer && config.oidc.jwksUrl) {
    keySets.set(config.oidc.issuer, createRemoteJWKSet(new URL(config.oidc.jwksUrl), { timeoutDuration: 3_000, cooldownDuration: 30_000 }));
  }
  if (config.devMode) {
    const { d: _d, ...publicJwk } = await devIdpKey(db);
    keySets.set(devIssuer(config), createLocalJWKSet({ keys: [publicJwk] }));
  }
  return {
    issuers: new Set(keySets.keys()),
    async verify(token) {
      let payload;
      try {
        const { iss } = decodeJwt(token);
        const keySet = iss ? keySets.get(iss) : undefined;
        if (!keySet || !iss) throw new AuthenticationError('issuer-untrusted', 'the token issuer is not trusted');
        ({ payload } = await jwtVerify(token, keySet, {
          algorithms: HUMAN_TOKEN_ALGS,
          issuer: iss,
          audience: config.oidc.audience,
          requiredClaims: ['sub', 'exp'],
          clockTolerance: 5,
        }));
      } catch (error) {
        if (error instanceof AuthenticationError) throw error;
        const code = error instanceof joseErrors.JWTExpired ? 'token-expired' : 'token-invalid';
        throw new AuthenticationError(code, 'access token is not valid', { cause: error });
      }
      const tokenId = typeof payload.jti === 'string' ? payload.jti : `${payload.iat ?? ''}:${payload.sub as string}`;
      return staffActor(config, payload.sub as string, payload[config.oidc.rolesClaim], tokenId);
    },
  };
}

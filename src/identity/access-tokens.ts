import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import { AuthenticationError } from '../errors.js';
import { parseSystemValue, type SystemValue } from '../shared/system-value.js';
import { formatOrganization, type Actor } from './actor.js';
import { isAgentEnabled } from './agents.js';
import { isPartnerClientEnabled } from './partner-clients.js';
import { SERVICE_TOKEN_ALG, type ServiceSigningKey } from './signing-keys.js';
import { isWorkloadEnabled } from './workloads.js';

/** The service's own access tokens: every grant (`grants/`) mints one, every /fhir request verifies one. */

/** How long a disabled client's already-issued tokens may keep working: well inside the 5 s promise. */
const CLIENT_STATUS_CACHE_MS = 2_000;
/**
 * Access tokens whose signature and claims were verified, kept until they expire (issue 13: an ECDSA
 * verification on every request was about 6 % of the API's CPU, for a partner that reuses its token for its whole
 * lifetime). Bounded; the oldest entry goes first. Only the signature check is skipped: expiry, certificate
 * binding and every registration's status are checked on every request as before.
 */
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/** What minting and verifying our access tokens needs. */
export interface AccessTokenDeps {
  db: Db;
  config: Config;
  signingKey: ServiceSigningKey;
}

/** What the TLS connection proved: the verified client certificate's RFC 8705 thumbprint, if any. */
export interface ConnectionInfo {
  certificateThumbprint?: string | undefined;
}

export interface AccessTokenClaims {
  /** RFC 8705 certificate binding: the token works only over a connection with this client certificate. */
  certificateThumbprint?: string;
  /** Delegation (agents): RFC 8693 `act`, and the chain as `class:id` strings, outermost first. */
  act?: Record<string, unknown>;
  delegation?: string[];
  subject: string;
  clientId: string;
  organization: SystemValue;
  actorClass: Actor['actorClass'];
  protocol: Actor['protocol'];
  scope: string;
  ttl: number;
}

/** Our access tokens: JWTs signed by the service key, audience the FHIR base, lifetime ≤ ACCESS_TOKEN_TTL_SECONDS. */
export async function signAccessToken(
  deps: Pick<AccessTokenDeps, 'config' | 'signingKey'>,
  claims: AccessTokenClaims,
): Promise<{ accessToken: string; jti: string; ttl: number }> {
  const jti = randomUUID();
  const ttl = Math.max(1, Math.min(claims.ttl, deps.config.accessTokenTtlSeconds));
  const accessToken = await new SignJWT({
    client_id: claims.clientId,
    org: formatOrganization(claims.organization),
    actor_class: claims.actorClass,
    auth_protocol: claims.protocol,
    scope: claims.scope,
    ...(claims.act ? { act: claims.act, delegation: claims.delegation } : {}),
    ...(claims.certificateThumbprint ? { cnf: { 'x5t#S256': claims.certificateThumbprint } } : {}),
  })
    .setProtectedHeader({ alg: deps.signingKey.alg, kid: deps.signingKey.kid, typ: 'at+jwt' })
    .setIssuer(deps.config.publicBaseUrl)
    .setAudience(deps.config.fhirBaseUrl)
    .setSubject(claims.subject)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime(`${ttl}s`)
    .sign(deps.signingKey.privateKey);
  return { accessToken, jti, ttl };
}

/** The only protocol each actor class's tokens are issued by. */
const PROTOCOL_OF: Record<string, Actor['protocol']> = { partner: 'private_key_jwt', workload: 'token-exchange', agent: 'token-exchange' };

/** Verifies our own access tokens on every /fhir request. */
export function createAccessTokenVerifier(deps: AccessTokenDeps) {
  const keySet = createLocalJWKSet({ keys: [deps.signingKey.publicJwk as JWK] });
  const statusCache = new Map<string, { enabled: boolean; checkedAt: number }>();

  async function registrationEnabled(actorClass: Actor['actorClass'], clientId: string): Promise<boolean> {
    const key = `${actorClass}:${clientId}`;
    const cached = statusCache.get(key);
    if (cached && Date.now() - cached.checkedAt < CLIENT_STATUS_CACHE_MS) return cached.enabled;
    const enabled =
      actorClass === 'workload'
        ? await isWorkloadEnabled(deps.db, clientId)
        : actorClass === 'agent'
          ? await isAgentEnabled(deps.db, clientId)
          : await isPartnerClientEnabled(deps.db, clientId);
    statusCache.set(key, { enabled, checkedAt: Date.now() });
    return enabled;
  }

  const verified = new Map<string, JWTPayload>();
  async function verifiedPayload(token: string): Promise<JWTPayload> {
    const cached = verified.get(token);
    if (cached) {
      if (Date.now() < cached.exp! * 1000) return cached;
      verified.delete(token);
      throw new AuthenticationError('token-expired', 'access token is not valid');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keySet, {
        algorithms: [SERVICE_TOKEN_ALG],
        issuer: deps.config.publicBaseUrl,
        audience: deps.config.fhirBaseUrl,
        requiredClaims: ['sub', 'exp', 'jti'],
        typ: 'at+jwt',
      }));
    } catch (error) {
      const code = error instanceof joseErrors.JWTExpired ? 'token-expired' : 'token-invalid';
      throw new AuthenticationError(code, 'access token is not valid', { cause: error });
    }
    if (verified.size >= VERIFIED_TOKEN_CACHE_SIZE) verified.delete(verified.keys().next().value!);
    verified.set(token, payload);
    return payload;
  }

  return async function verifyAccessToken(token: string, connection: ConnectionInfo = {}): Promise<Actor> {
    const payload = await verifiedPayload(token);
    // RFC 8705: a certificate-bound token is good only over a connection presenting that certificate.
    const bound = (payload.cnf as Record<string, unknown> | undefined)?.['x5t#S256'];
    if (bound !== undefined && bound !== connection.certificateThumbprint) {
      throw new AuthenticationError('token-binding-mismatch', 'this access token is bound to a client certificate not presented here');
    }
    const organization = typeof payload.org === 'string' ? parseSystemValue(payload.org) : undefined;
    const clientId = payload.client_id;
    const actorClass = payload.actor_class;
    const protocol = PROTOCOL_OF[actorClass as string];
    if (!protocol || payload.auth_protocol !== protocol || typeof clientId !== 'string' || !organization) {
      throw new AuthenticationError('token-invalid', 'access token is not valid');
    }
    if (!(await registrationEnabled(actorClass as Actor['actorClass'], clientId))) {
      throw new AuthenticationError('client-disabled', 'client is disabled');
    }
    // A delegated token dies with any registration in its chain: revoking the partner revokes its agents.
    const delegation = Array.isArray(payload.delegation) ? payload.delegation.filter((d): d is string => typeof d === 'string') : undefined;
    if (actorClass === 'agent') {
      if (!delegation || delegation.length < 2) throw new AuthenticationError('token-invalid', 'access token is not valid');
      for (const link of delegation) {
        const [linkClass, ...rest] = link.split(':');
        if (!PROTOCOL_OF[linkClass!] || !(await registrationEnabled(linkClass as Actor['actorClass'], rest.join(':')))) {
          throw new AuthenticationError('client-disabled', 'a client in the delegation chain is disabled');
        }
      }
    }
    return {
      actorClass: actorClass as Actor['actorClass'],
      subject: payload.sub as string,
      clientId,
      organization,
      scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
      purposeOfUse: undefined,
      protocol,
      tokenJti: payload.jti as string,
      ...(delegation ? { delegationChain: delegation } : {}),
    };
  };
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;

import { randomUUID } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { parseSystemValue, type SystemValue } from '../shared/system-value.js';
import type { Db } from '../db/database.js';
import { AuthenticationError, InvalidRequestError, ServiceUnavailableError } from '../errors.js';
import { formatOrganization, type Actor } from './actor.js';
import { findPartnerClient, isPartnerClientEnabled, type PartnerClient } from './partner-clients.js';
import { findWorkloadBySubject, isIssuerTrusted, isWorkloadEnabled } from './workloads.js';
import { findAgent, isAgentEnabled } from './agents.js';
import { SERVICE_TOKEN_ALG, type ServiceSigningKey } from './signing-keys.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** SMART Backend Services: client assertions signed RS384 or ES384 only. */
export const CLIENT_ASSERTION_ALGS = ['RS384', 'ES384'];
/** A client assertion may expire at most this far ahead (SMART Backend Services). */
const MAX_ASSERTION_LIFETIME_SECONDS = 300;
/** Allowed clock skew between us and a partner. */
const CLOCK_TOLERANCE_SECONDS = 5;
/** How long a disabled client's already-issued tokens may keep working: well inside the 5 s promise. */
const CLIENT_STATUS_CACHE_MS = 2_000;

export interface TokenDeps {
  db: Db;
  redis: Redis;
  config: Config;
  signingKey: ServiceSigningKey;
  /** The service's verifier of its own access tokens (shared, with its registration-status cache). */
  verifyAccessToken?: (token: string) => Promise<Actor>;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
}

const invalidClient = (code: string, message: string, cause?: unknown) =>
  new AuthenticationError(code, message, { oauthError: 'invalid_client', cause });

/** POST /oauth/token with grant_type=client_credentials and a private_key_jwt client assertion. */
export async function issueClientCredentialsToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
  connection: ConnectionInfo = {},
): Promise<{ response: TokenResponse; actor: Actor }> {
  const grantType = stringField(form, 'grant_type');
  if (grantType !== 'client_credentials') {
    throw new InvalidRequestError('unsupported-grant-type', `grant_type must be client_credentials or ${TOKEN_EXCHANGE_GRANT}`, {
      oauthError: 'unsupported_grant_type',
    });
  }
  if (stringField(form, 'client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
    throw new InvalidRequestError('invalid-assertion-type', `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`, {
      oauthError: 'invalid_request',
    });
  }
  const assertion = stringField(form, 'client_assertion');
  if (!assertion) {
    throw new InvalidRequestError('missing-assertion', 'client_assertion is required', { oauthError: 'invalid_request' });
  }
  const requested = (stringField(form, 'scope') ?? '').split(/\s+/).filter(Boolean);
  if (requested.length === 0) {
    throw new InvalidRequestError('missing-scope', 'scope is required', { oauthError: 'invalid_request' });
  }

  const client = await authenticateClientAssertion(deps, assertion);
  // RFC 8705: a client registered for mutual TLS gets tokens bound to the certificate it connected with.
  if (client.tlsBound && !connection.certificateThumbprint) {
    throw invalidClient('client-certificate-required', 'this client must connect with its TLS client certificate');
  }
  const certificateThumbprint = client.tlsBound ? connection.certificateThumbprint : undefined;

  const notGranted = requested.filter((s) => !client.scopes.includes(s));
  if (notGranted.length > 0) {
    throw new InvalidRequestError('scope-not-granted', `scope not granted to this client: ${notGranted.join(' ')}`, {
      oauthError: 'invalid_scope',
    });
  }

  const scope = requested.join(' ');
  const { accessToken, jti, ttl } = await signAccessToken(deps, {
    subject: client.clientId,
    clientId: client.clientId,
    organization: client.organization,
    actorClass: 'partner',
    protocol: 'private_key_jwt',
    scope,
    ttl: deps.config.accessTokenTtlSeconds,
    ...(certificateThumbprint ? { certificateThumbprint } : {}),
  });
  return {
    response: { access_token: accessToken, token_type: 'bearer', expires_in: ttl, scope },
    actor: {
      actorClass: 'partner',
      subject: client.clientId,
      clientId: client.clientId,
      organization: client.organization,
      scopes: requested,
      purposeOfUse: undefined,
      protocol: 'private_key_jwt',
      tokenJti: jti,
    },
  };
}

/** What the TLS connection proved: the verified client certificate's RFC 8705 thumbprint, if any. */
export interface ConnectionInfo {
  certificateThumbprint?: string | undefined;
}

interface AccessTokenClaims {
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
async function signAccessToken(deps: TokenDeps, claims: AccessTokenClaims): Promise<{ accessToken: string; jti: string; ttl: number }> {
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

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Workload identity tokens must be signed with a public-key algorithm: an HMAC "signature" made with a
 * public key (algorithm confusion) is refused before any key is looked at. */
export const WORKLOAD_TOKEN_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'ES256', 'ES384', 'EdDSA'];

/**
 * POST /oauth/token with RFC 8693 token exchange: a workload presents the JWT its platform issued it
 * (`subject_token`, type `urn:ietf:params:oauth:token-type:jwt`); a registered issuer + subject maps it to a
 * workload registration and its scopes. The access token lives no longer than the subject token.
 */
export async function issueWorkloadToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
): Promise<{ response: TokenResponse & { issued_token_type: string }; actor: Actor }> {
  if (stringField(form, 'subject_token_type') !== JWT_TOKEN_TYPE) {
    throw new InvalidRequestError('unsupported-token-type', `subject_token_type must be ${JWT_TOKEN_TYPE}`, { oauthError: 'invalid_request' });
  }
  const subjectToken = stringField(form, 'subject_token');
  if (!subjectToken) throw new InvalidRequestError('missing-subject-token', 'subject_token is required', { oauthError: 'invalid_request' });
  const invalidGrant = (code: string, message: string, cause?: unknown) =>
    new InvalidRequestError(code, message, { oauthError: 'invalid_grant', cause });

  let claimed: { iss?: unknown; sub?: unknown };
  try {
    claimed = decodeJwt(subjectToken);
  } catch (error) {
    throw invalidGrant('subject-token-malformed', 'subject_token is not a JWT', error);
  }
  if (typeof claimed.iss !== 'string' || typeof claimed.sub !== 'string') {
    throw invalidGrant('subject-token-claims', 'subject_token needs iss and sub');
  }
  const workload = await findWorkloadBySubject(deps.db, claimed.iss, claimed.sub);
  if (!workload) {
    const trusted = await isIssuerTrusted(deps.db, claimed.iss);
    throw invalidGrant(trusted ? 'workload-subject-unknown' : 'workload-issuer-untrusted', trusted ? 'subject is not a registered workload' : 'issuer is not trusted');
  }
  if (!workload.enabled) throw invalidGrant('workload-disabled', 'workload is disabled');

  let payload;
  try {
    ({ payload } = await jwtVerify(subjectToken, keySetOf(workload), {
      algorithms: WORKLOAD_TOKEN_ALGS,
      issuer: workload.issuer,
      subject: workload.subject,
      audience: workload.audience,
      requiredClaims: ['iss', 'sub', 'aud', 'exp'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw invalidGrant(assertionErrorCode(error).replace('assertion-', 'subject-token-'), 'subject_token failed verification', error);
  }

  const requested = (stringField(form, 'scope') ?? '').split(/\s+/).filter(Boolean);
  const scopes = requested.length > 0 ? requested : workload.scopes;
  const notGranted = scopes.filter((s) => !workload.scopes.includes(s));
  if (notGranted.length > 0) {
    throw new InvalidRequestError('scope-not-granted', `scope not granted to this workload: ${notGranted.join(' ')}`, { oauthError: 'invalid_scope' });
  }
  const scope = scopes.join(' ');
  const remaining = (payload.exp as number) - Math.floor(Date.now() / 1000);
  const { accessToken, jti, ttl } = await signAccessToken(deps, {
    subject: workload.subject,
    clientId: workload.workloadId,
    organization: deps.config.ownOrganization,
    actorClass: 'workload',
    protocol: 'token-exchange',
    scope,
    ttl: remaining,
  });
  return {
    response: { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'bearer', expires_in: ttl, scope },
    actor: {
      actorClass: 'workload',
      subject: workload.subject,
      clientId: workload.workloadId,
      organization: deps.config.ownOrganization,
      scopes,
      purposeOfUse: undefined,
      protocol: 'token-exchange',
      tokenJti: jti,
    },
  };
}

/** The grant decides the protocol: SMART client credentials for partners, token exchange for workloads. */
export async function issueToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
  connection: ConnectionInfo = {},
): Promise<{ response: TokenResponse; actor: Actor }> {
  if (stringField(form, 'grant_type') !== TOKEN_EXCHANGE_GRANT) return issueClientCredentialsToken(deps, form, connection);
  return form.actor_token !== undefined ? issueAgentToken(deps, form) : issueWorkloadToken(deps, form);
}

/** An agent's identity token may live at most this long (as a SMART client assertion). */
const MAX_ACTOR_TOKEN_LIFETIME_SECONDS = 300;

/**
 * RFC 8693 delegation to an agent: `subject_token` is an access token we issued (the delegator: a partner, a
 * workload, or an agent re-delegating), `actor_token` a JWT the agent signed with its registered key (iss = sub
 * = agent id, aud = our token URL, at most 5 minutes, `jti` never reused). The new token's scopes are those
 * requested — each one both held by the delegator and among the agent's tool scopes — and it expires before
 * the delegator's token. Its `act` claim nests the chain.
 */
export async function issueAgentToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
): Promise<{ response: TokenResponse & { issued_token_type: string }; actor: Actor }> {
  const invalidGrant = (code: string, message: string, cause?: unknown) => new InvalidRequestError(code, message, { oauthError: 'invalid_grant', cause });
  if (stringField(form, 'subject_token_type') !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequestError('unsupported-token-type', `subject_token_type must be ${ACCESS_TOKEN_TYPE} when delegating to an agent`, { oauthError: 'invalid_request' });
  }
  if (stringField(form, 'actor_token_type') !== JWT_TOKEN_TYPE) {
    throw new InvalidRequestError('unsupported-token-type', `actor_token_type must be ${JWT_TOKEN_TYPE}`, { oauthError: 'invalid_request' });
  }
  const subjectToken = stringField(form, 'subject_token');
  const actorToken = stringField(form, 'actor_token');
  if (!subjectToken || !actorToken) throw new InvalidRequestError('missing-token', 'subject_token and actor_token are required', { oauthError: 'invalid_request' });

  let delegator: Actor;
  try {
    delegator = await (deps.verifyAccessToken ?? createAccessTokenVerifier(deps))(subjectToken);
  } catch (error) {
    throw invalidGrant('subject-token-invalid', 'subject_token is not a valid access token', error);
  }
  const delegatorExp = decodeJwt(subjectToken).exp as number;

  let agentId: unknown;
  try {
    agentId = decodeJwt(actorToken).iss;
  } catch (error) {
    throw invalidGrant('actor-token-malformed', 'actor_token is not a JWT', error);
  }
  const agent = typeof agentId === 'string' ? await findAgent(deps.db, agentId) : undefined;
  if (!agent) throw invalidGrant('agent-unknown', 'actor_token is not from a registered agent');
  if (!agent.enabled) throw invalidGrant('agent-disabled', 'agent is disabled');
  let payload;
  try {
    ({ payload } = await jwtVerify(actorToken, createLocalJWKSet(agent.jwks), {
      algorithms: WORKLOAD_TOKEN_ALGS,
      issuer: agent.agentId,
      subject: agent.agentId,
      audience: deps.config.tokenUrl,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw invalidGrant(assertionErrorCode(error).replace('assertion-', 'actor-token-'), 'actor_token failed verification', error);
  }
  const now = Math.floor(Date.now() / 1000);
  if ((payload.exp as number) - now > MAX_ACTOR_TOKEN_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    throw invalidGrant('actor-token-exp-too-far', 'actor_token exp is more than 5 minutes ahead');
  }
  await refuseReplay(deps.redis, agent.agentId, payload.jti as string, (payload.exp as number) + CLOCK_TOLERANCE_SECONDS);

  const requested = (stringField(form, 'scope') ?? '').split(/\s+/).filter(Boolean);
  const allowed = delegator.scopes.filter((s) => agent.toolScopes.includes(s));
  const scopes = requested.length > 0 ? requested : allowed;
  const beyondDelegator = scopes.filter((s) => !delegator.scopes.includes(s));
  if (beyondDelegator.length > 0) {
    throw new InvalidRequestError('scope-exceeds-delegation', `scope not held by the delegator: ${beyondDelegator.join(' ')}`, { oauthError: 'invalid_scope' });
  }
  const notTools = scopes.filter((s) => !agent.toolScopes.includes(s));
  if (notTools.length > 0 || scopes.length === 0) {
    throw new InvalidRequestError('scope-not-a-tool', 'scope is not among the agent\'s tool scopes', { oauthError: 'invalid_scope' });
  }

  const chain = [...(delegator.delegationChain ?? [`${delegator.actorClass}:${delegator.clientId}`]), `agent:${agent.agentId}`];
  const previousAct = decodeJwt(subjectToken).act as Record<string, unknown> | undefined;
  const scope = scopes.join(' ');
  // Shorter-lived than the delegator's token, and than our own cap.
  const { accessToken, jti, ttl } = await signAccessToken(deps, {
    subject: delegator.subject,
    clientId: agent.agentId,
    organization: delegator.organization,
    actorClass: 'agent',
    protocol: 'token-exchange',
    scope,
    ttl: delegatorExp - now - 1,
    act: { sub: agent.agentId, ...(previousAct ? { act: previousAct } : {}) },
    delegation: chain,
  });
  return {
    response: { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'bearer', expires_in: ttl, scope },
    actor: {
      actorClass: 'agent',
      subject: delegator.subject,
      clientId: agent.agentId,
      organization: delegator.organization,
      scopes,
      purposeOfUse: undefined,
      protocol: 'token-exchange',
      tokenJti: jti,
      delegationChain: chain,
    },
  };
}

/** Every check SMART Backend Services asks of a client assertion; returns the client it proves. */
async function authenticateClientAssertion(deps: TokenDeps, assertion: string): Promise<PartnerClient> {
  let clientId: unknown;
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(assertion).kid;
    clientId = decodeJwt(assertion).iss;
  } catch (error) {
    throw invalidClient('assertion-malformed', 'client_assertion is not a JWT', error);
  }
  if (typeof clientId !== 'string' || !clientId) throw invalidClient('assertion-no-issuer', 'client_assertion has no iss');
  if (typeof kid !== 'string' || !kid) throw invalidClient('assertion-no-kid', 'client_assertion header has no kid');

  const client = await findPartnerClient(deps.db, clientId);
  if (!client) throw invalidClient('unknown-client', 'unknown client');
  if (!client.enabled) throw invalidClient('client-disabled', 'client is disabled');

  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, clientKeySet(client), {
      algorithms: CLIENT_ASSERTION_ALGS,
      issuer: client.clientId,
      subject: client.clientId,
      audience: deps.config.tokenUrl,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw invalidClient(assertionErrorCode(error), 'client_assertion failed verification', error);
  }

  const now = Math.floor(Date.now() / 1000);
  const exp = payload.exp as number;
  if (exp - now > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    throw invalidClient('assertion-exp-too-far', 'client_assertion exp is more than 5 minutes ahead');
  }
  await refuseReplay(deps.redis, client.clientId, payload.jti as string, exp + CLOCK_TOLERANCE_SECONDS);
  return client;
}

/** Remembers each assertion `jti` until the assertion expires; a second use is refused. */
async function refuseReplay(redis: Redis, clientId: string, jti: string, expiresAt: number): Promise<void> {
  let stored: string | null;
  try {
    stored = await redis.set(`jti:${clientId}:${jti}`, '1', 'EXAT', expiresAt, 'NX');
  } catch (error) {
    throw new ServiceUnavailableError('replay-cache-unavailable', 'token service temporarily unavailable', {
      oauthError: 'temporarily_unavailable',
      cause: error,
    });
  }
  if (stored !== 'OK') throw invalidClient('assertion-replayed', 'client_assertion jti has already been used');
}

const remoteKeySets = new Map<string, JWTVerifyGetKey>();

function clientKeySet(client: PartnerClient): JWTVerifyGetKey {
  return keySetOf(client);
}

/** A registration's verification keys: its stored JWKS, or its JWKS URL (fetched, cached, rate-limited by jose). */
function keySetOf(registration: { jwks: { keys: JWK[] } | null; jwksUrl: string | null }): JWTVerifyGetKey {
  if (registration.jwks) return createLocalJWKSet(registration.jwks);
  const url = registration.jwksUrl as string;
  let keySet = remoteKeySets.get(url);
  if (!keySet) {
    keySet = createRemoteJWKSet(new URL(url), { timeoutDuration: 3_000, cooldownDuration: 30_000 });
    remoteKeySets.set(url, keySet);
  }
  return keySet;
}

function assertionErrorCode(error: unknown): string {
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'assertion-unknown-kid';
  if (error instanceof joseErrors.JWTExpired) return 'assertion-expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `assertion-bad-${error.claim}`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'assertion-alg-not-allowed';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'assertion-bad-signature';
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JOSEError) return 'assertion-invalid';
  return 'assertion-invalid';
}

function stringField(form: Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  return typeof value === 'string' ? value : undefined;
}

/** The only protocol each actor class's tokens are issued by. */
const PROTOCOL_OF: Record<string, Actor['protocol']> = { partner: 'private_key_jwt', workload: 'token-exchange', agent: 'token-exchange' };

/** Verifies our own access tokens on every /fhir request. */
export function createAccessTokenVerifier(deps: Omit<TokenDeps, 'redis'>) {
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

  return async function verifyAccessToken(token: string, connection: ConnectionInfo = {}): Promise<Actor> {
    let payload;
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

import { decodeJwt, decodeProtectedHeader, errors as joseErrors, generateKeyPair, jwtVerify } from 'jose';
import { InvalidRequestError } from '../../errors.js';
import { signAccessToken, type ConnectionInfo } from '../access-tokens.js';
import type { Actor } from '../actor.js';
import { findPartnerClient, type PartnerClient } from '../partner-clients.js';
import { assertionErrorCode, CLOCK_TOLERANCE_SECONDS, invalidClient, keySetOf, refuseReplay, stringField, type TokenDeps, type TokenResponse } from './common.js';
import { TOKEN_EXCHANGE_GRANT } from './token-exchange.js';

/** The partner grant: SMART Backend Services client credentials with a private_key_jwt client assertion. */

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** SMART Backend Services: client assertions signed RS384 or ES384 only. */
export const CLIENT_ASSERTION_ALGS = ['RS384', 'ES384'];
/** What every refusal before the assertion's signature verifies says: nothing about whether the client exists. */
const CLIENT_AUTHENTICATION_FAILED = 'client authentication failed';

/** A key no assertion was signed with: verifying against it costs what verifying a real client's key costs. */
let decoy: Promise<DecoyKey> | undefined;
type DecoyKey = Awaited<ReturnType<typeof generateKeyPair>>['publicKey'];
function decoyKey(): Promise<DecoyKey> {
  decoy ??= generateKeyPair('ES384').then((pair) => pair.publicKey);
  return decoy;
}

/** A client assertion may expire at most this far ahead (SMART Backend Services). */
const MAX_ASSERTION_LIFETIME_SECONDS = 300;

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

/**
 * Every check SMART Backend Services asks of a client assertion; returns the client it proves.
 *
 * Until the assertion's signature has verified against a registered, enabled client's keys, every refusal
 * answers the same `invalid_client` description, and an unknown or disabled client still costs a signature
 * check: whether a client id exists is not for an unauthenticated caller to learn (by text or by timing). The
 * audit event keeps the precise reason. After the signature verifies, the caller holds the key and is told
 * exactly what is wrong (expired, wrong audience, replayed, too long-lived).
 */
async function authenticateClientAssertion(deps: TokenDeps, assertion: string): Promise<PartnerClient> {
  const refuse = (code: string, cause?: unknown) => invalidClient(code, CLIENT_AUTHENTICATION_FAILED, cause);
  let clientId: unknown;
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(assertion).kid;
    clientId = decodeJwt(assertion).iss;
  } catch (error) {
    throw refuse('assertion-malformed', error);
  }
  if (typeof clientId !== 'string' || !clientId) throw refuse('assertion-no-issuer');
  if (typeof kid !== 'string' || !kid) throw refuse('assertion-no-kid');

  const client = await findPartnerClient(deps.db, clientId);
  if (!client?.enabled) {
    await jwtVerify(assertion, await decoyKey(), { algorithms: CLIENT_ASSERTION_ALGS }).catch(() => undefined);
    throw refuse(client ? 'client-disabled' : 'unknown-client');
  }

  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, keySetOf(client), {
      algorithms: CLIENT_ASSERTION_ALGS,
      issuer: client.clientId,
      subject: client.clientId,
      audience: deps.config.tokenUrl,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    // jose checks claims only once the signature verified: those the key holder may be told precisely.
    const signed = error instanceof joseErrors.JWTExpired || error instanceof joseErrors.JWTClaimValidationFailed;
    throw invalidClient(assertionErrorCode(error), signed ? 'client_assertion failed verification' : CLIENT_AUTHENTICATION_FAILED, error);
  }

  const now = Math.floor(Date.now() / 1000);
  const exp = payload.exp as number;
  if (exp - now > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    throw invalidClient('assertion-exp-too-far', 'client_assertion exp is more than 5 minutes ahead');
  }
  await refuseReplay(deps.redis, client.clientId, payload.jti as string, exp + CLOCK_TOLERANCE_SECONDS);
  return client;
}

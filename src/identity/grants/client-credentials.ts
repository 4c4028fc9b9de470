import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
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
    ({ payload } = await jwtVerify(assertion, keySetOf(client), {
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

import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, type JWK, type JWTVerifyGetKey } from 'jose';
import type { Redis } from 'ioredis';
import { AuthenticationError, ServiceUnavailableError } from '../../errors.js';
import type { Actor } from '../actor.js';
import type { AccessTokenDeps } from '../access-tokens.js';

/** What every grant at POST /oauth/token shares: its dependencies, its response, and the checks of signed JWTs. */

/** Allowed clock skew between us and a partner. */
export const CLOCK_TOLERANCE_SECONDS = 5;

export interface TokenDeps extends AccessTokenDeps {
  redis: Redis;
  /** The service's verifier of its own access tokens (shared, with its registration-status cache). */
  verifyAccessToken?: (token: string) => Promise<Actor>;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  scope: string;
}

export const invalidClient = (code: string, message: string, cause?: unknown) =>
  new AuthenticationError(code, message, { oauthError: 'invalid_client', cause });

/** Remembers each assertion `jti` until the assertion expires; a second use is refused. */
export async function refuseReplay(redis: Redis, clientId: string, jti: string, expiresAt: number): Promise<void> {
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

/** A registration's verification keys: its stored JWKS, or its JWKS URL (fetched, cached, rate-limited by jose). */
export function keySetOf(registration: { jwks: { keys: JWK[] } | null; jwksUrl: string | null }): JWTVerifyGetKey {
  if (registration.jwks) return createLocalJWKSet(registration.jwks);
  const url = registration.jwksUrl as string;
  let keySet = remoteKeySets.get(url);
  if (!keySet) {
    keySet = createRemoteJWKSet(new URL(url), { timeoutDuration: 3_000, cooldownDuration: 30_000 });
    remoteKeySets.set(url, keySet);
  }
  return keySet;
}

export function assertionErrorCode(error: unknown): string {
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'assertion-unknown-kid';
  if (error instanceof joseErrors.JWTExpired) return 'assertion-expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `assertion-bad-${error.claim}`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'assertion-alg-not-allowed';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'assertion-bad-signature';
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JOSEError) return 'assertion-invalid';
  return 'assertion-invalid';
}

export function stringField(form: Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  return typeof value === 'string' ? value : undefined;
}

import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../identity/grants/token-exchange.js';
import { cliFetch, responseBody } from './http.js';
import type { TokenRequestResult } from './partner-tools.js';

/**
 * A stand-in for a workload identity issuer (a Kubernetes service-account token issuer, a cloud workload
 * identity, a SPIFFE JWT-SVID issuer), for the walk-through and tests: mints the JWT the platform would give
 * a batch job, and exchanges it at /oauth/token.
 */

export interface WorkloadTokenOptions {
  issuer: string;
  subject: string;
  audience: string;
  privateJwk: JWK;
  /** Seconds until expiry (platform tokens commonly live 10–60 minutes). */
  expiresIn?: number;
  /** For hostile tests: sign with another algorithm than the key's. */
  alg?: string;
}

export async function mintWorkloadToken(options: WorkloadTokenOptions): Promise<string> {
  const alg = options.alg ?? options.privateJwk.alg ?? 'ES384';
  const key = (await importJWK(options.privateJwk, alg)) as CryptoKey;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: options.privateJwk.kid ?? '', typ: 'JWT' })
    .setIssuer(options.issuer)
    .setSubject(options.subject)
    .setAudience(options.audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 600))
    .sign(key);
}

export async function exchangeWorkloadToken(tokenUrl: string, subjectToken: string, scope?: string): Promise<TokenRequestResult> {
  const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subjectToken, subject_token_type: JWT_TOKEN_TYPE });
  if (scope) form.set('scope', scope);
  const response = await cliFetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  return { status: response.status, body: ((await responseBody(response)) ?? {}) as Record<string, unknown> };
}

/**
 * An agent's side of delegation (RFC 8693): the token it was delegated, plus its own identity (a JWT signed
 * with its registered key, made like a SMART client assertion), exchanged for a narrower delegated token.
 */
export async function exchangeForAgentToken(tokenUrl: string, subjectToken: string, actorToken: string, scope?: string): Promise<TokenRequestResult> {
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    actor_token: actorToken,
    actor_token_type: JWT_TOKEN_TYPE,
  });
  if (scope) form.set('scope', scope);
  const response = await cliFetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  return { status: response.status, body: ((await responseBody(response)) ?? {}) as Record<string, unknown> };
}

import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import { cliFetch, responseBody } from './http.js';

/**
 * What a partner payer does on its side of SMART Backend Services: hold a key pair, publish the public
 * half, sign a client assertion. Used by the CLI's `partner` commands, the walk-through, tests and benchmarks.
 */

export interface PartnerKeyPair {
  privateJwk: JWK;
  publicJwks: { keys: JWK[] };
}

export async function generatePartnerKeyPair(alg: 'ES384' | 'RS384' = 'ES384'): Promise<PartnerKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
    publicJwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }] },
  };
}

export interface AssertionOptions {
  clientId: string;
  tokenUrl: string;
  privateJwk: JWK;
  /** Seconds until the assertion expires (SMART caps this at 300). */
  expiresIn?: number;
  jti?: string;
  kid?: string;
}

export async function signClientAssertion(options: AssertionOptions): Promise<string> {
  const alg = options.privateJwk.alg ?? 'ES384';
  const key = (await importJWK(options.privateJwk, alg)) as CryptoKey;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: options.kid ?? options.privateJwk.kid ?? '', typ: 'JWT' })
    .setIssuer(options.clientId)
    .setSubject(options.clientId)
    .setAudience(options.tokenUrl)
    .setJti(options.jti ?? randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 240))
    .sign(key);
}

export interface TokenRequestResult {
  status: number;
  body: Record<string, unknown>;
}

export async function requestAccessToken(
  tokenUrl: string,
  clientAssertion: string,
  scope: string,
): Promise<TokenRequestResult> {
  const response = await cliFetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
      scope,
    }),
  });
  return { status: response.status, body: ((await responseBody(response)) ?? {}) as Record<string, unknown> };
}

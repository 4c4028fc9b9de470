import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';
import type { DbOrTx } from '../db/database.js';

/** The algorithm of the service's own access-token key. */
export const SERVICE_TOKEN_ALG = 'ES384';

export interface ServiceSigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * Loads the active signing key, creating one on first start. Keys live in the database so every API
 * process signs with, and verifies against, the same key. (A production deployment would keep the private
 * half in a KMS/HSM; the table is the seam for that.)
 */
export async function loadOrCreateSigningKey(db: DbOrTx): Promise<ServiceSigningKey> {
  const existing = await db
    .selectFrom('signing_keys')
    .selectAll()
    .where('active', '=', true)
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
  if (existing) {
    return {
      kid: existing.kid,
      alg: existing.alg,
      privateKey: (await importJWK(existing.private_jwk as JWK, existing.alg)) as CryptoKey,
      publicJwk: existing.public_jwk as JWK,
    };
  }
  const { privateKey, publicKey } = await generateKeyPair(SERVICE_TOKEN_ALG, { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SERVICE_TOKEN_ALG, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SERVICE_TOKEN_ALG };
  await db
    .insertInto('signing_keys')
    .values({ kid, alg: SERVICE_TOKEN_ALG, public_jwk: JSON.stringify(publicJwk), private_jwk: JSON.stringify(privateJwk) })
    .onConflict((oc) => oc.doNothing())
    .execute();
  // Two processes starting together may both generate a key: re-read so both use the same one.
  return loadOrCreateSigningKey(db);
}

export async function publicJwks(db: DbOrTx): Promise<{ keys: JWK[] }> {
  const rows = await db.selectFrom('signing_keys').select('public_jwk').where('active', '=', true).execute();
  return { keys: rows.map((r) => r.public_jwk as JWK) };
}

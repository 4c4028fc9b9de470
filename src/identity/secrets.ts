import { randomBytes } from 'node:crypto';
import type { DbOrTx } from '../db/database.js';

/**
 * The key for keyed hashes (HMAC) of demographics in the audit trail. Configured with PHI_HASH_KEY, or
 * generated once and kept in the database so hashes stay comparable across restarts.
 */
export async function loadPhiHashKey(db: DbOrTx, configured: string | undefined): Promise<string> {
  if (configured) return configured;
  await db
    .insertInto('service_secrets')
    .values({ name: 'phi_hash_key', value: randomBytes(32).toString('base64url') })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await db.selectFrom('service_secrets').select('value').where('name', '=', 'phi_hash_key').executeTakeFirstOrThrow();
  return row.value;
}

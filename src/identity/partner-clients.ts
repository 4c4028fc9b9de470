import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { Selectable } from 'kysely';
import type { PartnerClientsTable } from '../db/schema.js';
import type { SystemValue } from '../shared/system-value.js';
import type { DbOrTx } from '../db/database.js';

export interface PartnerClient {
  clientId: string;
  name: string;
  organization: SystemValue;
  jwks: { keys: JWK[] } | null;
  jwksUrl: string | null;
  scopes: string[];
  enabled: boolean;
  /** Registered for mutual TLS: tokens are bound to its client certificate (RFC 8705). */
  tlsBound: boolean;
  createdAt: Date;
}

/** Scopes a partner payer may be granted. */
export const PARTNER_SCOPES = ['system/Patient.$member-match', 'system/Group.$bulk-member-match', 'system/Patient.rs'] as const;

export interface NewPartnerClient {
  name: string;
  organization: SystemValue;
  jwks?: { keys: JWK[] };
  jwksUrl?: string;
  scopes: string[];
  tlsBound?: boolean;
}

export async function registerPartnerClient(db: DbOrTx, client: NewPartnerClient): Promise<PartnerClient> {
  const clientId = `mm-${randomBytes(12).toString('base64url')}`;
  await db
    .insertInto('partner_clients')
    .values({
      client_id: clientId,
      name: client.name,
      organization_system: client.organization.system,
      organization_value: client.organization.value,
      jwks: client.jwks ? JSON.stringify(client.jwks) : null,
      jwks_url: client.jwksUrl ?? null,
      scopes: client.scopes,
      tls_bound: client.tlsBound ?? false,
    })
    .execute();
  const created = await findPartnerClient(db, clientId);
  if (!created) throw new Error('client vanished after insert');
  return created;
}

export async function findPartnerClient(db: DbOrTx, clientId: string): Promise<PartnerClient | undefined> {
  const row = await db.selectFrom('partner_clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  return row ? toPartnerClient(row) : undefined;
}

export async function listPartnerClients(db: DbOrTx): Promise<PartnerClient[]> {
  const rows = await db.selectFrom('partner_clients').selectAll().orderBy('created_at').execute();
  return rows.map(toPartnerClient);
}

/** Returns false when no such client exists. */
export async function disablePartnerClient(db: DbOrTx, clientId: string): Promise<boolean> {
  const result = await db
    .updateTable('partner_clients')
    .set({ enabled: false, disabled_at: new Date() })
    .where('client_id', '=', clientId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Lets a disabled client request tokens again; false when no such client exists. */
export async function enablePartnerClient(db: DbOrTx, clientId: string): Promise<boolean> {
  const result = await db.updateTable('partner_clients').set({ enabled: true, disabled_at: null }).where('client_id', '=', clientId).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function isPartnerClientEnabled(db: DbOrTx, clientId: string): Promise<boolean> {
  const row = await db.selectFrom('partner_clients').select('enabled').where('client_id', '=', clientId).executeTakeFirst();
  return row?.enabled ?? false;
}

function toPartnerClient(row: Selectable<PartnerClientsTable>): PartnerClient {
  return {
    clientId: row.client_id,
    name: row.name,
    organization: { system: row.organization_system, value: row.organization_value },
    jwks: row.jwks as { keys: JWK[] } | null,
    jwksUrl: row.jwks_url,
    scopes: row.scopes,
    enabled: row.enabled,
    tlsBound: row.tls_bound,
    createdAt: row.created_at,
  };
}

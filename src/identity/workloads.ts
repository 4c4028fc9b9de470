import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { Selectable } from 'kysely';
import type { WorkloadIdentitiesTable } from '../db/schema.js';
import type { DbOrTx } from '../db/database.js';

/** A trusted workload: which issuer's tokens, for which subject and audience, map to which scopes. */
export interface WorkloadIdentity {
  workloadId: string;
  name: string;
  issuer: string;
  subject: string;
  audience: string;
  jwks: { keys: JWK[] } | null;
  jwksUrl: string | null;
  scopes: string[];
  enabled: boolean;
}

/** Scopes a workload may be granted: business actions of batch jobs. */
export const WORKLOAD_SCOPES = ['roster:reconcile', 'system/Group.$bulk-member-match'] as const;

export interface NewWorkload {
  name: string;
  issuer: string;
  subject: string;
  audience: string;
  jwks?: { keys: JWK[] };
  jwksUrl?: string;
  scopes: string[];
}

export async function registerWorkload(db: DbOrTx, workload: NewWorkload): Promise<WorkloadIdentity> {
  const workloadId = `wl-${randomBytes(12).toString('base64url')}`;
  await db
    .insertInto('workload_identities')
    .values({
      workload_id: workloadId,
      name: workload.name,
      issuer: workload.issuer,
      subject: workload.subject,
      audience: workload.audience,
      jwks: workload.jwks ? JSON.stringify(workload.jwks) : null,
      jwks_url: workload.jwksUrl ?? null,
      scopes: workload.scopes,
    })
    .execute();
  return (await findWorkload(db, workloadId))!;
}

export async function findWorkload(db: DbOrTx, workloadId: string): Promise<WorkloadIdentity | undefined> {
  const row = await db.selectFrom('workload_identities').selectAll().where('workload_id', '=', workloadId).executeTakeFirst();
  return row && toWorkload(row);
}

/** The registration for a token's issuer and subject, if any. */
export async function findWorkloadBySubject(db: DbOrTx, issuer: string, subject: string): Promise<WorkloadIdentity | undefined> {
  const row = await db.selectFrom('workload_identities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
  return row && toWorkload(row);
}

export async function isIssuerTrusted(db: DbOrTx, issuer: string): Promise<boolean> {
  return !!(await db.selectFrom('workload_identities').select('workload_id').where('issuer', '=', issuer).executeTakeFirst());
}

export async function listWorkloads(db: DbOrTx): Promise<WorkloadIdentity[]> {
  return (await db.selectFrom('workload_identities').selectAll().orderBy('created_at').execute()).map(toWorkload);
}

export async function disableWorkload(db: DbOrTx, workloadId: string): Promise<boolean> {
  const result = await db
    .updateTable('workload_identities')
    .set({ enabled: false, disabled_at: new Date() })
    .where('workload_id', '=', workloadId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Trusts a disabled workload again (its next exchange succeeds); false when no such workload exists. */
export async function enableWorkload(db: DbOrTx, workloadId: string): Promise<boolean> {
  const result = await db.updateTable('workload_identities').set({ enabled: true, disabled_at: null }).where('workload_id', '=', workloadId).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function isWorkloadEnabled(db: DbOrTx, workloadId: string): Promise<boolean> {
  const row = await db.selectFrom('workload_identities').select('enabled').where('workload_id', '=', workloadId).executeTakeFirst();
  return row?.enabled ?? false;
}

function toWorkload(row: Selectable<WorkloadIdentitiesTable>): WorkloadIdentity {
  return {
    workloadId: row.workload_id,
    name: row.name,
    issuer: row.issuer,
    subject: row.subject,
    audience: row.audience,
    jwks: (row.jwks as { keys: JWK[] } | null) ?? null,
    jwksUrl: row.jwks_url,
    scopes: row.scopes,
    enabled: row.enabled,
  };
}

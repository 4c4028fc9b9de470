import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { DbOrTx } from '../db/database.js';

/** A registered agent: its keys, and the tool scopes it may ever act with (whatever it is delegated). */
export interface AgentRegistration {
  agentId: string;
  name: string;
  jwks: { keys: JWK[] };
  toolScopes: string[];
  enabled: boolean;
}

export async function registerAgent(db: DbOrTx, agent: { name: string; jwks: { keys: JWK[] }; toolScopes: string[] }): Promise<AgentRegistration> {
  const agentId = `ag-${randomBytes(12).toString('base64url')}`;
  await db
    .insertInto('agent_registrations')
    .values({ agent_id: agentId, name: agent.name, jwks: JSON.stringify(agent.jwks), tool_scopes: agent.toolScopes })
    .execute();
  return (await findAgent(db, agentId))!;
}

export async function findAgent(db: DbOrTx, agentId: string): Promise<AgentRegistration | undefined> {
  const row = await db.selectFrom('agent_registrations').selectAll().where('agent_id', '=', agentId).executeTakeFirst();
  return (
    row && {
      agentId: row.agent_id,
      name: row.name,
      jwks: row.jwks as unknown as { keys: JWK[] },
      toolScopes: row.tool_scopes,
      enabled: row.enabled,
    }
  );
}

export async function listAgents(db: DbOrTx): Promise<AgentRegistration[]> {
  const rows = await db.selectFrom('agent_registrations').select('agent_id').orderBy('created_at').execute();
  return (await Promise.all(rows.map((r) => findAgent(db, r.agent_id)))).filter((a): a is AgentRegistration => !!a);
}

export async function disableAgent(db: DbOrTx, agentId: string): Promise<boolean> {
  const result = await db.updateTable('agent_registrations').set({ enabled: false, disabled_at: new Date() }).where('agent_id', '=', agentId).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Lets a disabled agent take delegations again; false when no such agent exists. */
export async function enableAgent(db: DbOrTx, agentId: string): Promise<boolean> {
  const result = await db.updateTable('agent_registrations').set({ enabled: true, disabled_at: null }).where('agent_id', '=', agentId).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function isAgentEnabled(db: DbOrTx, agentId: string): Promise<boolean> {
  const row = await db.selectFrom('agent_registrations').select('enabled').where('agent_id', '=', agentId).executeTakeFirst();
  return row?.enabled ?? false;
}

import type { ConnectionInfo } from './access-tokens.js';
import type { Actor } from './actor.js';
import { issueAgentToken } from './grants/agent-delegation.js';
import { issueClientCredentialsToken } from './grants/client-credentials.js';
import { stringField, type TokenDeps, type TokenResponse } from './grants/common.js';
import { issueWorkloadToken, TOKEN_EXCHANGE_GRANT } from './grants/token-exchange.js';

/** POST /oauth/token: the one entry point over the grants in `grants/`. */

/** The grant decides the protocol: SMART client credentials for partners, token exchange for workloads. */
export async function issueToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
  connection: ConnectionInfo = {},
): Promise<{ response: TokenResponse; actor: Actor }> {
  if (stringField(form, 'grant_type') !== TOKEN_EXCHANGE_GRANT) return issueClientCredentialsToken(deps, form, connection);
  return form.actor_token !== undefined ? issueAgentToken(deps, form) : issueWorkloadToken(deps, form);
}

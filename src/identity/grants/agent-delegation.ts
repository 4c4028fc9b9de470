import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { InvalidRequestError } from '../../errors.js';
import { createAccessTokenVerifier, signAccessToken } from '../access-tokens.js';
import type { Actor } from '../actor.js';
import { findAgent } from '../agents.js';
import { assertionErrorCode, CLOCK_TOLERANCE_SECONDS, refuseReplay, stringField, type TokenDeps, type TokenResponse } from './common.js';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, WORKLOAD_TOKEN_ALGS } from './token-exchange.js';

/** An agent's identity token may live at most this long (as a SMART client assertion). */
const MAX_ACTOR_TOKEN_LIFETIME_SECONDS = 300;

/**
 * RFC 8693 delegation to an agent: `subject_token` is an access token we issued (the delegator: a partner, a
 * workload, or an agent re-delegating), `actor_token` a JWT the agent signed with its registered key (iss = sub
 * = agent id, aud = our token URL, at most 5 minutes, `jti` never reused). The new token's scopes are those
 * requested — each one both held by the delegator and among the agent's tool scopes — and it expires before
 * the delegator's token. Its `act` claim nests the chain.
 */
export async function issueAgentToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
): Promise<{ response: TokenResponse & { issued_token_type: string }; actor: Actor }> {
  const invalidGrant = (code: string, message: string, cause?: unknown) => new InvalidRequestError(code, message, { oauthError: 'invalid_grant', cause });
  if (stringField(form, 'subject_token_type') !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequestError('unsupported-token-type', `subject_token_type must be ${ACCESS_TOKEN_TYPE} when delegating to an agent`, { oauthError: 'invalid_request' });
  }
  if (stringField(form, 'actor_token_type') !== JWT_TOKEN_TYPE) {
    throw new InvalidRequestError('unsupported-token-type', `actor_token_type must be ${JWT_TOKEN_TYPE}`, { oauthError: 'invalid_request' });
  }
  const subjectToken = stringField(form, 'subject_token');
  const actorToken = stringField(form, 'actor_token');
  if (!subjectToken || !actorToken) throw new InvalidRequestError('missing-token', 'subject_token and actor_token are required', { oauthError: 'invalid_request' });

  let delegator: Actor;
  try {
    delegator = await (deps.verifyAccessToken ?? createAccessTokenVerifier(deps))(subjectToken);
  } catch (error) {
    throw invalidGrant('subject-token-invalid', 'subject_token is not a valid access token', error);
  }
  const delegatorExp = decodeJwt(subjectToken).exp as number;

  let agentId: unknown;
  try {
    agentId = decodeJwt(actorToken).iss;
  } catch (error) {
    throw invalidGrant('actor-token-malformed', 'actor_token is not a JWT', error);
  }
  const agent = typeof agentId === 'string' ? await findAgent(deps.db, agentId) : undefined;
  if (!agent) throw invalidGrant('agent-unknown', 'actor_token is not from a registered agent');
  if (!agent.enabled) throw invalidGrant('agent-disabled', 'agent is disabled');
  let payload;
  try {
    ({ payload } = await jwtVerify(actorToken, createLocalJWKSet(agent.jwks), {
      algorithms: WORKLOAD_TOKEN_ALGS,
      issuer: agent.agentId,
      subject: agent.agentId,
      audience: deps.config.tokenUrl,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw invalidGrant(assertionErrorCode(error).replace('assertion-', 'actor-token-'), 'actor_token failed verification', error);
  }
  const now = Math.floor(Date.now() / 1000);
  if ((payload.exp as number) - now > MAX_ACTOR_TOKEN_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    throw invalidGrant('actor-token-exp-too-far', 'actor_token exp is more than 5 minutes ahead');
  }
  await refuseReplay(deps.redis, agent.agentId, payload.jti as string, (payload.exp as number) + CLOCK_TOLERANCE_SECONDS);

  const requested = (stringField(form, 'scope') ?? '').split(/\s+/).filter(Boolean);
  const allowed = delegator.scopes.filter((s) => agent.toolScopes.includes(s));
  const scopes = requested.length > 0 ? requested : allowed;
  const beyondDelegator = scopes.filter((s) => !delegator.scopes.includes(s));
  if (beyondDelegator.length > 0) {
    throw new InvalidRequestError('scope-exceeds-delegation', `scope not held by the delegator: ${beyondDelegator.join(' ')}`, { oauthError: 'invalid_scope' });
  }
  const notTools = scopes.filter((s) => !agent.toolScopes.includes(s));
  if (notTools.length > 0 || scopes.length === 0) {
    throw new InvalidRequestError('scope-not-a-tool', 'scope is not among the agent\'s tool scopes', { oauthError: 'invalid_scope' });
  }

  const chain = [...(delegator.delegationChain ?? [`${delegator.actorClass}:${delegator.clientId}`]), `agent:${agent.agentId}`];
  const previousAct = decodeJwt(subjectToken).act as Record<string, unknown> | undefined;
  const scope = scopes.join(' ');
  // Shorter-lived than the delegator's token, and than our own cap.
  const { accessToken, jti, ttl } = await signAccessToken(deps, {
    subject: delegator.subject,
    clientId: agent.agentId,
    organization: delegator.organization,
    actorClass: 'agent',
    protocol: 'token-exchange',
    scope,
    ttl: delegatorExp - now - 1,
    act: { sub: agent.agentId, ...(previousAct ? { act: previousAct } : {}) },
    delegation: chain,
  });
  return {
    response: { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'bearer', expires_in: ttl, scope },
    actor: {
      actorClass: 'agent',
      subject: delegator.subject,
      clientId: agent.agentId,
      organization: delegator.organization,
      scopes,
      purposeOfUse: undefined,
      protocol: 'token-exchange',
      tokenJti: jti,
      delegationChain: chain,
    },
  };
}

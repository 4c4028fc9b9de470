import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair, signClientAssertion, type PartnerKeyPair } from '../src/cli/partner-tools.js';
import { exchangeForAgentToken } from '../src/cli/workload-tools.js';
import { disableAgent, registerAgent, type AgentRegistration } from '../src/identity/agents.js';
import { disablePartnerClient } from '../src/identity/partner-clients.js';
import {
  getJson,
  importRows,
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestPartner,
  type TestService,
  HL7_EXAMPLE_MEMBER_ROW,
} from './support/service.js';

/** Agents act only on delegation: narrower scopes, shorter lives, the chain in `act` and in the audit trail. */
let ts: TestService;
let partner: TestPartner;
let agentKeys: PartnerKeyPair;
let agent: AgentRegistration;
let tokenUrl: string;

beforeAll(async () => {
  ts = await startTestService();
  tokenUrl = `${ts.url}/oauth/token`;
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
  ]);
  partner = await registerTestPartner(ts);
  agentKeys = await generatePartnerKeyPair('ES384');
  agent = await registerAgent(ts.service.deps.db, { name: 'matching assistant', jwks: agentKeys.publicJwks, toolScopes: ['system/Patient.$member-match'] });
});
afterAll(() => ts?.stop());

const actorToken = (agentId = agent.agentId, overrides: { jti?: string; expiresIn?: number } = {}) =>
  signClientAssertion({ clientId: agentId, tokenUrl: ts.config.tokenUrl, privateJwk: agentKeys.privateJwk, ...overrides });

async function refused(res: { status: number; body: Record<string, unknown> }, error: string, code: string) {
  expect(res.status).toBe(error === 'invalid_client' ? 401 : 400);
  expect(res.body.error).toBe(error);
  const [event] = await latestAuditEvents(ts, 1);
  expect(event).toMatchObject({ operation: 'token', outcome: 'failure', reason_code: code });
}

describe('agent delegation (RFC 8693)', () => {
  it('issues a delegated token whose act claim and audit record the chain, and which lives shorter than its delegator', async () => {
    const delegatorToken = await partnerToken(ts, partner);
    const res = await exchangeForAgentToken(tokenUrl, delegatorToken, await actorToken());
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('system/Patient.$member-match'); // the delegator's scopes ∩ the agent's tools
    const claims = decodeJwt(res.body.access_token as string);
    expect(claims).toMatchObject({ actor_class: 'agent', sub: partner.clientId, act: { sub: agent.agentId } });
    expect(claims.exp!).toBeLessThan(decodeJwt(delegatorToken).exp!);

    const match = await postMemberMatch(ts, res.body.access_token as string, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(match.status).toBe(200);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ actor_class: 'agent', client_id: agent.agentId, reason_code: 'matched' });
    expect(event!.details).toMatchObject({
      delegationChain: [`partner:${partner.clientId}`, `agent:${agent.agentId}`],
      policy: { decision: 'allow', policies: ['agents-submit-member-match-for-partners'] },
    });
  });

  it('refuses scopes beyond the delegator, and scopes that are not the agent\'s tools', async () => {
    const narrow = await partnerToken(ts, partner, 'system/Patient.$member-match');
    await refused(await exchangeForAgentToken(tokenUrl, narrow, await actorToken(), 'system/Patient.rs'), 'invalid_scope', 'scope-exceeds-delegation');
    const broad = await partnerToken(ts, partner);
    await refused(await exchangeForAgentToken(tokenUrl, broad, await actorToken(), 'system/Patient.rs'), 'invalid_scope', 'scope-not-a-tool');
  });

  it('refuses an agent token for an action outside its tools (policy), with the decision audited', async () => {
    const token = (await exchangeForAgentToken(tokenUrl, await partnerToken(ts, partner), await actorToken())).body.access_token as string;
    const res = await getJson(ts, '/fhir/Patient?identifier=55678', token);
    expect(res.status).toBe(403);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event!.details).toMatchObject({ policy: { decision: 'deny', policies: ['agent-read-needs-tool-scope'], reason: 'scope-missing' } });
  });

  it('refuses an invalid delegator token, an unknown agent, a replayed or foreign-signed actor token', async () => {
    await refused(await exchangeForAgentToken(tokenUrl, 'not-a-token', await actorToken()), 'invalid_grant', 'subject-token-invalid');
    const delegator = await partnerToken(ts, partner);
    await refused(await exchangeForAgentToken(tokenUrl, delegator, await actorToken('ag-nobody')), 'invalid_grant', 'agent-unknown');
    const once = await actorToken(agent.agentId, { jti: 'fixed-jti-1' });
    expect((await exchangeForAgentToken(tokenUrl, delegator, once)).status).toBe(200);
    await refused(await exchangeForAgentToken(tokenUrl, delegator, once), 'invalid_client', 'assertion-replayed');
    const stranger = await generatePartnerKeyPair('ES384');
    const forged = await signClientAssertion({ clientId: agent.agentId, tokenUrl: ts.config.tokenUrl, privateJwk: { ...stranger.privateJwk, kid: agentKeys.privateJwk.kid } });
    await refused(await exchangeForAgentToken(tokenUrl, delegator, forged), 'invalid_grant', 'actor-token-bad-signature');
  });

  it('revokes delegated tokens with their delegator or their agent, within 5 seconds', async () => {
    const victim = await registerTestPartner(ts);
    const viaPartner = (await exchangeForAgentToken(tokenUrl, await partnerToken(ts, victim), await actorToken())).body.access_token as string;
    const spareAgent = await registerAgent(ts.service.deps.db, { name: 'temp', jwks: agentKeys.publicJwks, toolScopes: ['system/Patient.$member-match'] });
    const viaAgent = (await exchangeForAgentToken(tokenUrl, await partnerToken(ts, partner), await actorToken(spareAgent.agentId))).body.access_token as string;
    await disablePartnerClient(ts.service.deps.db, victim.clientId);
    await disableAgent(ts.service.deps.db, spareAgent.agentId);
    await new Promise((r) => setTimeout(r, 2_500));
    const example = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
    expect((await postMemberMatch(ts, viaPartner, example)).status).toBe(401);
    expect((await postMemberMatch(ts, viaAgent, example)).status).toBe(401);
  });
});

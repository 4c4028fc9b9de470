import type { Coverage, Parameters, ParametersParameter, Patient } from 'fhir/r4.js';
import { hrexExampleRequest } from '../../src/cli/hrex-example.js';
import { generatePartnerKeyPair, signClientAssertion, type PartnerKeyPair } from '../../src/cli/partner-tools.js';
import { exchangeForAgentToken, exchangeWorkloadToken, mintWorkloadToken } from '../../src/cli/workload-tools.js';
import { registerAgent } from '../../src/identity/agents.js';
import { registerWorkload } from '../../src/identity/workloads.js';
import { eventually, ROSTER_HEADER, type TestService } from './service.js';

/**
 * The three doors into the match pipeline — `$member-match`, `$bulk-member-match` and `POST /rosters` — driven
 * the way a partner, an agent and one of our workloads drive them, for tests that send the same people
 * through each.
 */

/** A person as a test describes them: the demographics offered and the card the asker holds. */
export interface TestPerson {
  given: string;
  family: string;
  suffix?: string;
  birthDate: string;
  gender: 'male' | 'female';
  addressLine?: string;
  city?: string;
  state?: string;
  postalCode?: string;
  phone?: string;
  /** The member id on the asker's card (ours, or one of theirs that means nothing to us). */
  card: string;
}

/** An HRex $member-match request for the person, its consent naming `recipient`. */
export function memberMatchRequest(person: TestPerson, recipient: { system: string; value: string }): Parameters {
  const request = hrexExampleRequest({ recipient, policy: 'sensitive' });
  const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as Patient;
  Object.assign(patient, {
    name: [{ family: person.family, given: [person.given], ...(person.suffix ? { suffix: [person.suffix] } : {}) }],
    birthDate: person.birthDate,
    gender: person.gender,
    identifier: undefined,
    address: person.addressLine
      ? [{ use: 'home', line: [person.addressLine], city: person.city, state: person.state, postalCode: person.postalCode }]
      : undefined,
    telecom: person.phone ? [{ system: 'phone', value: person.phone }] : undefined,
  });
  const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
  coverage.identifier = [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, value: person.card }];
  delete coverage.subscriberId;
  return request;
}

/** The request as one MemberBundle of a PDex $bulk-member-match. */
export function memberBundle(request: Parameters): ParametersParameter {
  return { name: 'MemberBundle', part: structuredClone(request.parameter!) };
}

/** The people as a roster to reconcile: the card is the row's member id and coverage id. */
export function rosterOf(people: readonly TestPerson[]): string {
  const rows = people.map((p) =>
    [p.card, '', 'self', p.given, '', p.family, p.suffix ?? '', p.birthDate, p.gender, p.addressLine ?? '', p.city ?? '', p.state ?? '', p.postalCode ?? '', p.phone ?? '', '', p.card, '', '', '', ''].join(','),
  );
  return [ROSTER_HEADER, ...rows].join('\n') + '\n';
}

/** Kicks off a bulk match; answers the kick-off's status and, when accepted, the finished result. */
export async function bulkMatch(ts: TestService, token: string, requests: readonly Parameters[]): Promise<{ status: number; body: any; result?: Parameters }> {
  const response = await fetch(`${ts.url}/fhir/Group/$bulk-member-match`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', prefer: 'respond-async' },
    body: JSON.stringify({ resourceType: 'Parameters', parameter: requests.map(memberBundle) }),
  });
  const text = await response.text();
  const kickOff = { status: response.status, body: text ? JSON.parse(text) : undefined };
  if (response.status !== 202) return kickOff;
  const statusUrl = response.headers.get('content-location')!.replace(ts.config.fhirBaseUrl, `${ts.url}/fhir`);
  const result = await eventually(async () => {
    const poll = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}` } });
    if (poll.status === 202) return undefined;
    if (poll.status !== 200) throw new Error(`bulk status answered ${poll.status}`);
    return (await poll.json()) as Parameters;
  });
  return { ...kickOff, result };
}

/** The member references (Patient/<uuid>) a bulk result's MatchedMembers Group names, in the order sent. */
export function bulkMatchedReferences(result: Parameters): Map<string, string> {
  const matched = result.parameter?.find((p) => p.name === 'MatchedMembers')?.resource as { contained?: { id: string }[]; member?: { entity: { reference?: string; extension?: { valueReference?: { reference?: string } }[] } }[] } | undefined;
  const byLocalId = new Map<string, string>();
  for (const member of matched?.member ?? []) {
    const local = member.entity.extension?.[0]?.valueReference?.reference?.slice(1);
    if (local && member.entity.reference) byLocalId.set(local, member.entity.reference);
  }
  return byLocalId;
}

/** A workload's access token, through the platform token exchange, as the batch tests do. */
export async function workloadToken(ts: TestService, subject: string, scopes = ['roster:reconcile']): Promise<string> {
  const issuer = 'https://kubernetes.default.svc.cluster.local';
  const keys = await generatePartnerKeyPair('ES384');
  await registerWorkload(ts.service.deps.db, { name: subject, issuer, subject, audience: 'member-match', jwks: keys.publicJwks, scopes });
  const platformToken = await mintWorkloadToken({ issuer, subject, audience: 'member-match', privateJwk: keys.privateJwk });
  const exchanged = await exchangeWorkloadToken(`${ts.url}/oauth/token`, platformToken, scopes.join(' '));
  if (exchanged.status !== 200) throw new Error(`workload token exchange failed: ${JSON.stringify(exchanged.body)}`);
  return exchanged.body.access_token as string;
}

/** Reconciles a roster to the end; answers each result line, in line order. */
export async function reconcileRoster(ts: TestService, token: string, csv: string): Promise<any[]> {
  const response = await fetch(`${ts.url}/rosters`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, body: csv });
  if (response.status !== 202) throw new Error(`roster upload answered ${response.status}`);
  const { id } = (await response.json()) as { id: string };
  await eventually(async () => {
    const status = (await (await fetch(`${ts.url}/rosters/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { state: string };
    if (status.state === 'failed') throw new Error('roster job failed');
    return status.state === 'completed' ? status : undefined;
  });
  const results = await fetch(`${ts.url}/rosters/${id}/results`, { headers: { authorization: `Bearer ${token}` } });
  return (await results.text()).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)).sort((a, b) => a.line - b.line);
}

/** An agent registered for `$member-match`, and a token for it acting on the partner's delegation. */
export async function agentToken(ts: TestService, delegatorToken: string): Promise<string> {
  const keys: PartnerKeyPair = await generatePartnerKeyPair('ES384');
  const agent = await registerAgent(ts.service.deps.db, { name: 'matching assistant', jwks: keys.publicJwks, toolScopes: ['system/Patient.$member-match'] });
  const actorAssertion = await signClientAssertion({ clientId: agent.agentId, tokenUrl: ts.config.tokenUrl, privateJwk: keys.privateJwk });
  const exchanged = await exchangeForAgentToken(`${ts.url}/oauth/token`, delegatorToken, actorAssertion);
  if (exchanged.status !== 200) throw new Error(`agent token exchange failed: ${JSON.stringify(exchanged.body)}`);
  return exchanged.body.access_token as string;
}

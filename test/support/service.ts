import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JWK } from 'jose';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startService, type RunningService } from '../../src/service.js';
import { registerPartnerClient } from '../../src/identity/partner-clients.js';
import type { JobOwner } from '../../src/batch/jobs.js';
import { importRoster } from '../../src/members/roster-import.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion, type PartnerKeyPair } from '../../src/cli/partner-tools.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const PUBLIC_BASE_URL = 'http://member-match.test';
export const NEW_PAYER_ORG = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };
export const OTHER_PAYER_ORG = { system: 'http://hl7.org/fhir/sid/us-npi', value: '5555555555' };

export interface TestService {
  url: string;
  config: Config;
  service: RunningService;
  database: TestDatabase;
  stop(): Promise<void>;
}

/** A real server on a free port, over its own database and Redis key prefix. */
export async function startTestService(env: Record<string, string> = {}): Promise<TestService> {
  const database = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    PUBLIC_BASE_URL,
    REDIS_KEY_PREFIX: `mm-test-${randomBytes(6).toString('hex')}:`,
    LOG_LEVEL: 'silent',
    ...env,
  });
  const service = await startService(config, createLogger('silent'));
  return {
    url: service.url,
    config,
    service,
    database,
    async stop() {
      await service.close();
      await database.drop();
    },
  };
}

export interface TestPartner {
  clientId: string;
  keys: PartnerKeyPair;
  organization: { system: string; value: string };
}

export async function registerTestPartner(
  ts: TestService,
  options: { organization?: { system: string; value: string }; scopes?: string[]; alg?: 'ES384' | 'RS384' } = {},
): Promise<TestPartner> {
  const keys = await generatePartnerKeyPair(options.alg ?? 'ES384');
  const organization = options.organization ?? NEW_PAYER_ORG;
  const client = await registerPartnerClient(ts.service.deps.db, {
    name: 'Test partner',
    organization,
    jwks: keys.publicJwks,
    scopes: options.scopes ?? ['system/Patient.$member-match', 'system/Patient.rs'],
  });
  return { clientId: client.clientId, keys, organization };
}

export async function partnerAssertion(
  ts: TestService,
  partner: TestPartner,
  overrides: { expiresIn?: number; jti?: string; kid?: string; privateJwk?: JWK; tokenUrl?: string } = {},
): Promise<string> {
  return signClientAssertion({
    clientId: partner.clientId,
    tokenUrl: overrides.tokenUrl ?? ts.config.tokenUrl,
    privateJwk: overrides.privateJwk ?? partner.keys.privateJwk,
    ...(overrides.expiresIn !== undefined ? { expiresIn: overrides.expiresIn } : {}),
    ...(overrides.jti ? { jti: overrides.jti } : {}),
    ...(overrides.kid ? { kid: overrides.kid } : {}),
  });
}

export async function partnerToken(
  ts: TestService,
  partner: TestPartner,
  scope = 'system/Patient.$member-match system/Patient.rs',
): Promise<string> {
  const result = await requestAccessToken(`${ts.url}/oauth/token`, await partnerAssertion(ts, partner), scope);
  if (result.status !== 200) throw new Error(`token request failed: ${JSON.stringify(result.body)}`);
  return result.body.access_token as string;
}

export async function postMemberMatch(
  ts: TestService,
  token: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${ts.url}/fhir/Patient/$member-match`, {
    method: 'POST',
    headers: {
      'content-type': 'application/fhir+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export async function getJson(ts: TestService, pathAndQuery: string, token?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${ts.url}${pathAndQuery}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export const ROSTER_HEADER =
  'member_id,subscriber_id,relationship,given,middle,family,suffix,birth_date,gender,address_line,city,state,postal_code,phone,email,coverage_id,group,plan,period_start,period_end';

/** Imports CSV rows (without header) through the real roster importer. */
/** The HL7 example member (Patricia Ann Person, member id 55678, coverage DH10001235) as a roster row. */
export const HL7_EXAMPLE_MEMBER_ROW = '55678,DH10001235,self,Patricia,Ann,Person,,1974-12-25,female,100 Example Way,Springfield,IL,62701,555-0100,,DH10001235,CB135,B37FC,2011-05-23,2012-05-23';

/**
 * Pairs of records that fit a request about them equally well (Sam Lee, Kim Park, Ray Diaz, Lou Chen, each
 * twice under one subscriber): every request about one of them is a conflict, so goes to review.
 */
export const CONFLICT_PAIR_ROWS = [
  '30001,L200,self,Sam,,Lee,,2001-01-01,male,,,,,,,CL1,,,,',
  '30002,L200,child,Sam,,Lee,,2001-01-01,male,,,,,,,CL2,,,,',
  '30003,L300,self,Kim,,Park,,1990-05-05,female,,,,,,,CP1,,,,',
  '30004,L300,child,Kim,,Park,,1990-05-05,female,,,,,,,CP2,,,,',
  '30005,L400,self,Ray,,Diaz,,1985-03-03,male,,,,,,,CD1,,,,',
  '30006,L400,child,Ray,,Diaz,,1985-03-03,male,,,,,,,CD2,,,,',
  '30007,L500,self,Lou,,Chen,,1970-07-07,male,,,,,,,CC1,,,,',
  '30008,L500,child,Lou,,Chen,,1970-07-07,male,,,,,,,CC2,,,,',
];

/** An operator at the command line, as the owner of an index-import job. */
export const TEST_OPERATOR: JobOwner = {
  actorClass: 'human',
  subject: 'local:test',
  clientId: 'cli:test',
  organization: { system: 'http://hl7.org/fhir/sid/us-npi', value: '9876543210' },
  protocol: 'local',
  tokenJti: '',
  scopes: [],
};

export async function importRows(ts: TestService, rows: string[]): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mm-roster-'));
  const file = path.join(dir, 'roster.csv');
  await writeFile(file, [ROSTER_HEADER, ...rows].join('\n') + '\n');
  const summary = await importRoster(ts.service.deps.db, file, { memberIdentifierSystem: ts.config.memberIdentifierSystem });
  if (summary.rejected > 0) throw new Error(`test roster rejected rows: ${JSON.stringify(summary.errors)}`);
}

/** The latest audit events, newest first. */
export async function latestAuditEvents(ts: TestService, limit = 5) {
  return ts.service.deps.db.selectFrom('audit_events').selectAll().orderBy('seq', 'desc').limit(limit).execute();
}

/** The queue workers (review relay, batch chunks) in this process, against the test service's database and Redis prefix. */
export async function startTestWorkers(ts: TestService): Promise<{ stop(): Promise<void> }> {
  const { startWorkers } = await import('../../src/workers.js');
  return startWorkers(ts.config, ts.service.deps.db, createLogger('silent'));
}

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

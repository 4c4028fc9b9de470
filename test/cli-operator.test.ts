import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePartnerKeyPair } from '../src/cli/partner-tools.js';
import { formatTable } from '../src/cli/output.js';
import { registerAgent } from '../src/identity/agents.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { registerWorkload } from '../src/identity/workloads.js';
import { DEFAULT_MODEL_FILE } from '../src/members/model-store.js';
import { projectFile } from '../src/project-files.js';
import { runCli } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { ROSTER_HEADER } from './support/service.js';

/**
 * The operator's CLI (issue 14) run as a child process against a test database: --version, option values
 * checked before anything runs, headers on lists, enable after disable, progress on `roster import`, the
 * scratch databases `eval` leaves (named, listed, cleaned), and `model train` that will not overwrite a model.
 */
let database: TestDatabase;
let env: Record<string, string>;
let dir: string;

beforeAll(async () => {
  database = await createTestDatabase();
  env = { DATABASE_URL: database.url, PUBLIC_BASE_URL: 'http://127.0.0.1:9' };
  dir = await mkdtemp(path.join(tmpdir(), 'mm-cli-'));
}, 60_000);
afterAll(() => database?.drop());

const cli = (...args: string[]) => runCli(args, env);

describe('the command line itself', () => {
  it('prints its version', async () => {
    const { version } = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const run = await cli(flag);
      expect(run.code).toBe(0);
      expect(run.stdout.trim()).toBe(version);
    }
  }, 60_000);

  it('refuses option values it cannot use, naming the option and what it takes, before touching anything', async () => {
    const cases: [string[], RegExp][] = [
      [['roster', 'jobs', '--limit', 'abc'], /--limit.*'abc' is invalid.*whole number from 1 to 1000/],
      [['roster', 'jobs', '--limit', '0'], /--limit.*whole number from 1 to 1000/],
      [['demo', 'request', '--policy', 'foo'], /--policy.*'foo' is invalid.*sensitive, regular/],
      [['demo', 'request', '--birth-date', '25/12/1974'], /--birth-date.*YYYY-MM-DD/],
      [['partner', 'keys', '--out', dir, '--alg', 'HS256'], /--alg.*ES384, RS384/],
      [['synth', '--members', '-3', '--queries', '1', '--out', dir], /--members.*non-negative integer/],
      [['links', 'list', '--status', 'sideways', '--token', 't'], /--status.*active, revoked/],
      [['links', 'list', '--limit', '9999', '--token', 't'], /--limit.*1 to 500/],
      [['links', 'list', '--partner', 'no-bar', '--token', 't'], /--partner.*system\|value/],
      [['links', 'revoke', 'not-a-link', '--reason', 'x', '--token', 't'], /link id/],
      [['review', 'list', '--status', 'lost', '--token', 't'], /--status.*pending, claimed/],
      [['review', 'decide', 'not-a-case', '--decision', 'match', '--reason', 'x', '--token', 't'], /case id/],
      [['review', 'decide', '00000000-0000-0000-0000-000000000000', '--decision', 'maybe', '--reason', 'x', '--token', 't'], /--decision.*match, no-match/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(...args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.stderr, args.join(' ')).not.toMatch(/TypeError|at .*\.ts:\d+|syntax for type|relation/);
    }
  }, 180_000);

  it('prints the request for a valid --policy', async () => {
    const run = await cli('demo', 'request', '--policy', 'regular');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('#regular');
  }, 60_000);
});

describe('lists', () => {
  it('print a header line, also when empty', async () => {
    const keys = await generatePartnerKeyPair();
    const client = await registerPartnerClient(database.db, { name: 'Acme Health', organization: { system: 'urn:test', value: '1' }, jwks: keys.publicJwks, scopes: ['system/Patient.rs'] });
    const expectations: [string[], string][] = [
      [['client', 'list'], 'CLIENT ID'],
      [['workload', 'list'], 'WORKLOAD ID'],
      [['agent', 'list'], 'AGENT ID'],
      [['consent', 'list'], 'MEMBER ID'],
      [['roster', 'jobs'], 'ID'],
      [['model', 'list'], 'ACTIVE'],
      [['scratch', 'list'], 'DATABASE'],
    ];
    for (const [args, first] of expectations) {
      const run = await cli(...args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      expect(run.stdout.split('\n')[0], args.join(' ')).toMatch(new RegExp(`^${first}\\b`));
    }
    const clients = await cli('client', 'list');
    expect(clients.stdout.split('\n')[1]).toContain(client.clientId);
  }, 180_000);

  it('aligns columns under the header', () => {
    expect(formatTable(['A', 'LONGER'], [['x', 1], ['yyyy', null]])).toBe('A     LONGER\nx     1\nyyyy  -');
  });
});

describe('enable after disable', () => {
  it('re-enables a workload, a client and an agent, and names an id it does not know', async () => {
    const keys = await generatePartnerKeyPair();
    const workload = await registerWorkload(database.db, { name: 'nightly', issuer: 'https://issuer.test', subject: 'job', audience: 'member-match', scopes: ['roster:reconcile'], jwks: keys.publicJwks });
    const client = await registerPartnerClient(database.db, { name: 'Beta', organization: { system: 'urn:test', value: '2' }, jwks: keys.publicJwks, scopes: ['system/Patient.rs'] });
    const agent = await registerAgent(database.db, { name: 'helper', jwks: keys.publicJwks, toolScopes: ['system/Patient.rs'] });
    const cases = [
      ['workload', workload.workloadId, 'workload_identities', 'workload_id'],
      ['client', client.clientId, 'partner_clients', 'client_id'],
      ['agent', agent.agentId, 'agent_registrations', 'agent_id'],
    ] as const;
    await Promise.all(cases.map(async ([kind, id, table, column]) => {
      const enabled = async () => (await database.db.selectFrom(table).select('enabled').where(column as never, '=', id as never).executeTakeFirstOrThrow()).enabled;
      expect((await cli(kind, 'disable', id)).code).toBe(0);
      expect(await enabled()).toBe(false);
      const run = await cli(kind, 'enable', id);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout.trim()).toBe(`enabled ${id}`);
      expect(await enabled()).toBe(true);
      const unknown = await cli(kind, 'enable', 'no-such-id');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain(`no such ${kind}: no-such-id`);
    }));
  }, 180_000);
});

describe('roster import', () => {
  it('reports progress on stderr while it runs, and its summary alone on stdout', async () => {
    const file = path.join(dir, 'big-roster.csv');
    const rows = Array.from({ length: 12_000 }, (_, i) => `${900000 + i},S${i},self,Given${i % 977},,Family${i % 1499},,19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10},female,,,,,,,C${i},,,,`);
    await writeFile(file, [ROSTER_HEADER, ...rows].join('\n') + '\n');
    const run = await cli('roster', 'import', file);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/importing: [\d,]+ rows read, [\d,]+ rows\/s/);
    const summary = JSON.parse(run.stdout.trim()) as { state: string; inserted: number };
    expect(summary).toMatchObject({ state: 'completed', inserted: 12_000 });
  }, 120_000);

  it('names a roster file that is not there', async () => {
    const run = await cli('roster', 'import', path.join(dir, 'missing.csv'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no roster file at');
  }, 60_000);
});

describe('scratch evaluation databases', () => {
  it('eval names the scratch database it leaves, and scratch clean removes it (and only scratch databases)', async () => {
    const data = path.join(dir, 'eval');
    expect((await cli('synth', '--members', '60', '--queries', '6', '--out', data)).code).toBe(0);
    const evaluated = await cli('eval', '--index', path.join(data, 'roster.csv'), '--queries', path.join(data, 'queries.ndjson'), '--truth', path.join(data, 'truth.csv'));
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const named = /scratch database (\S+) kept for the next run on this roster; `member-match scratch clean` removes it/.exec(evaluated.stderr);
    expect(named, evaluated.stderr).not.toBeNull();
    const scratch = named![1]!;
    expect(scratch.startsWith(`${new URL(database.url).pathname.slice(1)}_eval_`)).toBe(true);

    const listed = await cli('scratch', 'list');
    expect(listed.stdout).toContain(scratch);
    const dry = await cli('scratch', 'clean', '--dry-run');
    expect(dry.stdout).toContain(`would drop ${scratch}`);
    expect(await databaseExists(scratch)).toBe(true);
    const cleaned = await cli('scratch', 'clean');
    expect(cleaned.code, cleaned.stderr).toBe(0);
    expect(cleaned.stdout).toContain(`dropped ${scratch}`);
    expect(await databaseExists(scratch)).toBe(false);
    expect(await databaseExists(new URL(database.url).pathname.slice(1))).toBe(true);
  }, 120_000);
});

describe('model train', () => {
  it('refuses to overwrite the shipped model, or any existing file, without --force — before training', async () => {
    const before = readFileSync(DEFAULT_MODEL_FILE, 'utf8');
    const shipped = await cli('model', 'train', '--index', 'no-such-roster.csv', '--queries', 'q.ndjson', '--out', 'fixtures/models/default.json');
    expect(shipped.code).toBe(1);
    expect(shipped.stderr).toContain('fixtures/models/default.json exists and is the shipped default model');
    expect(shipped.stderr).toContain('--force');
    expect(readFileSync(DEFAULT_MODEL_FILE, 'utf8')).toBe(before);
    const existing = path.join(dir, 'model.json');
    await writeFile(existing, '{}');
    const other = await cli('model', 'train', '--index', 'no-such-roster.csv', '--queries', 'q.ndjson', '--out', existing);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`${existing} exists; write the new model elsewhere`);
  }, 60_000);
});

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: new URL('/postgres', database.url).toString() });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

import { createServer } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { networkErrorMessage } from '../src/cli/http.js';
import { devIdpToken } from '../src/identity/humans.js';
import { runCli } from './support/cli.js';
import { memberMatchRequest, type TestPerson } from './support/doors.js';
import {
  CONFLICT_PAIR_ROWS,
  getJson,
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
} from './support/service.js';

/**
 * `member-match review …` and `member-match links …` against a running service (issue 14), through the same
 * staff API the workbench uses; and what every API-calling command says when the service cannot be reached.
 */
let ts: TestService;
let partner: string;
let env: Record<string, string>;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW, ...CONFLICT_PAIR_ROWS.slice(0, 2)]);
  partner = await partnerToken(ts, await registerTestPartner(ts));
  env = { DATABASE_URL: ts.database.url, PUBLIC_BASE_URL: ts.url, DEV_MODE: 'true' };
}, 60_000);
afterAll(() => ts?.stop());

const staff = (user: string, roles: string[]) => devIdpToken(ts.service.deps.db, ts.config, user, roles);
const cli = (args: string[], token?: string) => runCli(args, { ...env, ...(token ? { MEMBER_MATCH_STAFF_TOKEN: token } : {}) });

const SAM_LEE: TestPerson = { given: 'Sam', family: 'Lee', birthDate: '2001-01-01', gender: 'male', card: 'NOT-OURS-1' };

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('review commands', () => {
  let caseId: string;

  it('list the queue under a header, claim, show and decide a case', async () => {
    expect((await postMemberMatch(ts, partner, memberMatchRequest(SAM_LEE, NEW_PAYER_ORG))).status).toBe(422);
    const reviewer = await staff('rae', ['reviewer']);

    const list = await cli(['review', 'list'], reviewer);
    expect(list.code, list.stderr).toBe(0);
    const [header, row] = list.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+STATUS\s+REASON\s+PARTNER/);
    expect(row).toMatch(/pending/);
    caseId = row!.split(/\s+/)[0]!;

    const claimed = await cli(['review', 'claim'], reviewer);
    expect(claimed.code, claimed.stderr).toBe(0);
    const view = JSON.parse(claimed.stdout) as { id: string; status: string; candidates: { memberRef: string }[] };
    expect(view).toMatchObject({ id: caseId, status: 'claimed' });
    expect(view.candidates.length).toBeGreaterThan(1);

    const shown = await cli(['review', 'show', caseId], reviewer);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: caseId, leaseOwner: 'rae' });

    // Another reviewer cannot decide it: the service's refusal, with its reason code.
    const other = await cli(['review', 'decide', caseId, '--decision', 'no-match', '--reason', 'x'], await staff('ola', ['reviewer']));
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('the service answered 403 not-claimed-by-you');

    const decided = await cli(['review', 'decide', caseId, '--decision', 'match', '--member', view.candidates[0]!.memberRef, '--reason', 'card and birth date agree'], reviewer);
    expect(decided.code, decided.stderr).toBe(0);
    expect(JSON.parse(decided.stdout)).toMatchObject({ id: caseId, decision: 'match', decidedBy: 'rae' });
  }, 180_000);

  it('sends the version it is given as If-Match (a stale one is refused), else the current one', async () => {
    const supervisor = await staff('ivy', ['supervisor']);
    const shown = JSON.parse((await cli(['review', 'show', caseId], supervisor)).stdout) as { status: string; version: number };
    // A match proposed on a case with a high-risk trait waits for a second reviewer (four eyes).
    expect(shown.status).toBe('awaiting-confirmation');
    const stale = await cli(['review', 'confirm', caseId, '--reason', 'agreed', '--case-version', String(shown.version + 7)], supervisor);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('the service answered 412 stale-version');
    const confirmed = await cli(['review', 'confirm', caseId, '--reason', 'agreed'], supervisor);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(JSON.parse(confirmed.stdout)).toMatchObject({ id: caseId, status: 'decided', confirmedBy: 'ivy' });
  }, 90_000);

  it('requires --member with match, and says so', async () => {
    const run = await cli(['review', 'decide', caseId, '--decision', 'match', '--reason', 'x'], await staff('rae', ['reviewer']));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--member is required with --decision match');
  }, 60_000);

  it('says the queue is empty on claim, exit 0', async () => {
    const run = await cli(['review', 'claim'], await staff('rae', ['reviewer']));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('the queue is empty');
  }, 60_000);

  it('asks for a staff token when none is given, and for a new one when it is refused', async () => {
    const none = await cli(['review', 'list']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('give a staff token as --token or MEMBER_MATCH_STAFF_TOKEN');
    const expired = await cli(['review', 'list', '--token', 'not-a-token']);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toContain('the service answered 401');
    expect(expired.stderr).toContain('staff tokens expire');
  }, 60_000);
});

describe('links commands', () => {
  it('list a partner’s links under a header, and revoke one as a supervisor only', async () => {
    const matched = await postMemberMatch(ts, partner, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }));
    expect(matched.status).toBe(200);
    const memberRef = matched.body.parameter.find((p: any) => p.name === 'MemberId').valueReference.reference.split('/').pop();

    const list = await cli(['links', 'list', '--partner', `${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}`], await staff('aud', ['auditor']));
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^LINK\s+STATUS\s+MEMBER/);
    const hl7 = lines.find((l) => /\s55678\s/.test(l))!;
    expect(hl7).toMatch(/\sactive\s/);
    const linkId = hl7.split(/\s+/)[0]!;

    const refused = await cli(['links', 'revoke', linkId, '--reason', 'disputed'], await staff('rae', ['reviewer']));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the service answered 403 role-missing');
    expect((await getJson(ts, `/fhir/Patient/${memberRef}`, partner)).status).toBe(200);

    const revoked = await cli(['links', 'revoke', linkId, '--reason', 'disputed'], await staff('sue', ['supervisor']));
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${linkId}`);
    expect((await getJson(ts, `/fhir/Patient/${memberRef}`, partner)).status).toBe(404);

    const json = await cli(['links', 'list', '--status', 'revoked', '--json'], await staff('aud', ['auditor']));
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ linkId, status: 'revoked', revokedBy: 'sue', revokeReason: 'disputed' })]);
  }, 180_000);
});

describe('an unreachable service', () => {
  it('is reported with the address and what to check, never as "fetch failed"', async () => {
    const base = `http://127.0.0.1:${await closedPort()}`;
    const dir = await mkdtemp(path.join(tmpdir(), 'mm-cli-api-'));
    const roster = path.join(dir, 'roster.csv');
    await writeFile(roster, 'member_id\n1\n');
    const runs = [
      await cli(['links', 'list', '--base', base, '--token', 't']),
      await cli(['review', 'list', '--base', base, '--token', 't']),
      await cli(['roster', 'reconcile', roster, '--base', base, '--token', 't']),
      await cli(['partner', 'token', '--client-id', 'c', '--key', path.join(dir, 'no-key.json'), '--base', base]),
    ];
    for (const run of runs.slice(0, 3)) {
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`member-match: cannot reach the service at ${base}: connection refused: is the server running, on that host and port? (ECONNREFUSED). Check --base or PUBLIC_BASE_URL.`);
      expect(run.stderr).not.toContain('fetch failed');
      expect(run.stderr).not.toContain('TypeError');
    }
    // A missing key file is named as such (the file is read before any request).
    expect(runs[3]!.stderr.trim()).toBe(`member-match: ${path.join(dir, 'no-key.json')}: no such file`);
  }, 180_000);

  it('explains a connection dropped mid-request', () => {
    const dropped = Object.assign(new TypeError('fetch failed'), { cause: { code: 'UND_ERR_SOCKET', message: 'other side closed' } });
    expect(networkErrorMessage('http://api.test:8080/rosters/1', dropped)).toBe(
      'cannot reach the service at http://api.test:8080: the connection was closed: the server stopped or restarted mid-request (UND_ERR_SOCKET). Check --base or PUBLIC_BASE_URL.',
    );
  });
});

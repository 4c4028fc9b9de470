import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROSTER_DATA_COLUMNS } from '../src/members/roster-format/columns.js';
import { importRoster } from '../src/members/roster-import.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { clearOptOut, optOutStatus, recordOptOut } from '../src/consent/opt-out-registry.js';
import { findMemberSummaryByMemberId } from '../src/members/member-index.js';
import {
  getJson,
  importRows,
  latestAuditEvents,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
  HL7_EXAMPLE_MEMBER_ROW,
} from './support/service.js';

/** Our consent registry overrides whatever consent a partner presents: on matching and on every read. */
let ts: TestService;
let token: string;
let memberUuid: string;

beforeAll(async () => {
  ts = await startTestService();
  await importRows(ts, [
    HL7_EXAMPLE_MEMBER_ROW,
  ]);
  token = await partnerToken(ts, await registerTestPartner(ts));
  memberUuid = (await findMemberSummaryByMemberId(ts.service.deps.db, '55678'))!.id;
});
afterAll(() => ts?.stop());

const example = () => hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
const reason = (body: any) => body?.issue?.[0]?.details?.coding?.[0]?.code;

describe('consent registry', () => {
  it('refuses to disclose an opted-out member with a consent reason and no identifier, and audits it', async () => {
    await recordOptOut(ts.service.deps.db, memberUuid, 'opted-out', 'test');
    const res = await postMemberMatch(ts, token, example());
    expect(res.status).toBe(422);
    expect(reason(res.body)).toBe('member-opted-out');
    expect(JSON.stringify(res.body)).not.toMatch(/55678|DH10001235|Patricia/);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ reason_code: 'member-opted-out', consent_decision: 'deny:registry-opted-out', member_ref: memberUuid });
    expect(await ts.service.deps.db.selectFrom('member_links').selectAll().execute()).toHaveLength(0);
  });

  it('stops reads of a member already linked once the member revokes', async () => {
    await clearOptOut(ts.service.deps.db, memberUuid);
    expect((await postMemberMatch(ts, token, example())).status).toBe(200);
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(200);

    await recordOptOut(ts.service.deps.db, memberUuid, 'revoked', 'test');
    expect(await optOutStatus(ts.service.deps.db, memberUuid)).toBe('revoked');
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(404);
    const search = await getJson(ts, '/fhir/Patient?identifier=55678', token);
    expect(search.status).toBe(200);
    expect(search.body.total).toBe(0);
    const match = await postMemberMatch(ts, token, example());
    expect(reason(match.body)).toBe('member-opted-out');

    await clearOptOut(ts.service.deps.db, memberUuid);
    expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(200);
  });

  it('takes opt-outs from the roster sharing column, idempotently, and never clears one from a blank', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mm-sharing-'));
    const header = `${ROSTER_DATA_COLUMNS.join(',')},sharing`;
    const row = (id: string, given: string, sharing: string) =>
      `${id},S${id},self,${given},,Doe,,1980-01-0${id.slice(-1)},female,,,,,,,C${id},,,,,${sharing}`;
    const file = path.join(dir, 'roster.csv');
    await writeFile(file, [header, row('90001', 'Ann', 'opted-out'), row('90002', 'Bea', ''), row('90003', 'Cat', 'revoked')].join('\n') + '\n');
    const db = ts.service.deps.db;
    expect((await importRoster(db, file, { memberIdentifierSystem: ts.config.memberIdentifierSystem })).rejected).toBe(0);
    const status = async (id: string) => optOutStatus(db, (await findMemberSummaryByMemberId(db, id))!.id);
    expect([await status('90001'), await status('90002'), await status('90003')]).toEqual(['opted-out', undefined, 'revoked']);

    const before = await db.selectFrom('sharing_opt_outs').selectAll().orderBy('member_uuid').execute();
    await importRoster(db, file, { memberIdentifierSystem: ts.config.memberIdentifierSystem });
    expect(await db.selectFrom('sharing_opt_outs').selectAll().orderBy('member_uuid').execute()).toEqual(before);

    await writeFile(file, [header, row('90001', 'Ann', '')].join('\n') + '\n');
    await importRoster(db, file, { memberIdentifierSystem: ts.config.memberIdentifierSystem });
    expect(await status('90001')).toBe('opted-out');

    await writeFile(file, [header, row('90004', 'Dot', 'maybe')].join('\n') + '\n');
    const bad = await importRoster(db, file, { memberIdentifierSystem: ts.config.memberIdentifierSystem });
    expect(bad.errors).toEqual([{ line: 2, reason: 'sharing must be a sharing opt-out code (opted-out, revoked)' }]);
  });
});

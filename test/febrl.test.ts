import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { febrlDate, febrlToEvaluationFiles, type FebrlSummary } from '../tools/evaluation/febrl.js';
import { parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { readRosterCsv } from '../src/members/roster-format/csv-reader.js';
import { validateRosterRow } from '../src/members/roster-format/validate.js';

let work: string;
let summary: FebrlSummary;
let roster: string;
let queries: string[];
let truth: string[][];

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'febrl-test-'));
  summary = await febrlToEvaluationFiles(path.join('fixtures', 'febrl3.csv'), work);
  roster = await readFile(path.join(work, 'roster.csv'), 'utf8');
  queries = (await readFile(path.join(work, 'queries.ndjson'), 'utf8')).trimEnd().split('\n');
  truth = (await readFile(path.join(work, 'truth.csv'), 'utf8'))
    .trimEnd()
    .split('\n')
    .map((line) => line.split(','));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('FEBRL dataset 3 → evaluation files', () => {
  it('turns the 2,000 originals into index rows and the 3,000 duplicates into queries, skipping what cannot be used', () => {
    // 101 originals lack a given name, a family name or a valid birth date: the importer would reject them, and
    // their 140 duplicates then have no member to find. 184 further duplicates lack a name or a valid birth date
    // and would not parse as $member-match requests.
    expect(summary).toEqual({
      index: 1899,
      queries: 2676,
      nonMemberQueries: 0,
      skipped: 425,
      skippedBy: {
        'original-not-importable': 101,
        'duplicate-of-skipped-original': 140,
        'duplicate-without-name': 103,
        'duplicate-without-valid-birth-date': 81,
      },
    });
    expect(summary.index + summary.queries + summary.skipped).toBe(5000);
  });

  it('writes a roster that imports with zero rejected rows', async () => {
    const memberIds = new Set<string>();
    const rejected: string[] = [];
    for await (const event of readRosterCsv(Readable.from([roster]))) {
      if ('reason' in event) rejected.push(event.reason);
      else {
        const result = validateRosterRow(event.fields);
        if (result.ok) {
          memberIds.add(result.member.memberId);
          expect(result.member.memberId).toMatch(/^rec-\d+$/);
          expect(result.coverage.coverageId).toBe(`cov-${result.member.memberId.slice(4)}`);
          expect(result.coverage.relationship).toBe('self');
          expect(result.member.gender).toBeNull();
        } else rejected.push(result.reason);
      }
    }
    expect(rejected).toEqual([]);
    expect(memberIds.size).toBe(summary.index);
  });

  it("writes queries that parse, each card carrying the duplicate's soc_sec_id as subscriber id, with truth naming an indexed original", () => {
    expect(queries).toHaveLength(summary.queries);
    expect(truth[0]).toEqual(['query_id', 'member_id', 'hazard']);
    expect(truth).toHaveLength(summary.queries + 1);
    const rosterLines = roster.trimEnd().split('\n').slice(1);
    const memberIds = new Set(rosterLines.map((l) => l.split(',')[0]));
    const subscriberIds = new Set(rosterLines.map((l) => l.split(',')[1]));
    let agreeing = 0;
    queries.forEach((line, i) => {
      const { id, parameters } = JSON.parse(line) as { id: string; parameters: unknown };
      const [queryId, memberId, hazard] = truth[i + 1] as [string, string, string];
      expect(queryId).toBe(id);
      expect(memberIds.has(memberId), memberId).toBe(true); // FEBRL has no non-members
      expect(hazard).toMatch(/^(exact|((given|family|dob|address|city|postcode|state)-differs|missing-[a-z]+)(\+.+)?)\+(id-exact|id-differs|missing-id)$/);
      const request = parseMemberMatchRequest(parameters);
      expect(request.gender).toBe('unknown');
      expect(request.consent).toBeUndefined();
      expect(request.subscriberId).toMatch(/^\d{7}$/);
      if (subscriberIds.has(request.subscriberId!)) agreeing++;
      if (hazard.endsWith('id-exact')) expect(subscriberIds.has(request.subscriberId!)).toBe(true);
      // The member id field (MB) is one we never issued.
      expect(request.cardIdentifiers.filter((card) => /^F\d{9}$/.test(card))).toHaveLength(1);
    });
    // FEBRL corrupts soc_sec_id like any other field: about one in ten differs from the original's.
    expect(agreeing / queries.length).toBeGreaterThan(0.85);
    expect(agreeing / queries.length).toBeLessThan(0.95);
  });

  it('keeps soc_sec_id out of the requests when asked, for measuring demographics alone', async () => {
    const dir = path.join(work, 'without-identifier');
    await febrlToEvaluationFiles(path.join('fixtures', 'febrl3.csv'), dir, { identifier: false });
    const lines = (await readFile(path.join(dir, 'queries.ndjson'), 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(summary.queries);
    for (const line of lines) {
      const request = parseMemberMatchRequest((JSON.parse(line) as { parameters: unknown }).parameters);
      expect(request.subscriberId).toBeUndefined();
      for (const card of request.cardIdentifiers) expect(card).toMatch(/^F\d{9}$/);
    }
  });

  it('holds out a seeded share of originals, whose duplicates become queries for non-members', async () => {
    const dir = path.join(work, 'held-out');
    const held = await febrlToEvaluationFiles(path.join('fixtures', 'febrl3.csv'), dir, { holdOut: 0.2 });
    expect(held.queries).toBe(summary.queries);
    expect(held.index + held.queries + held.skipped).toBe(5000 - (summary.index - held.index));
    expect(held.nonMemberQueries / held.queries).toBeGreaterThan(0.15);
    expect(held.nonMemberQueries / held.queries).toBeLessThan(0.25);
    const heldRoster = new Set((await readFile(path.join(dir, 'roster.csv'), 'utf8')).trimEnd().split('\n').slice(1).map((l) => l.split(',')[0]));
    const heldTruth = (await readFile(path.join(dir, 'truth.csv'), 'utf8')).trimEnd().split('\n').slice(1).map((l) => l.split(','));
    const nonMembers = heldTruth.filter(([, memberId]) => memberId === '');
    expect(nonMembers).toHaveLength(held.nonMemberQueries);
    for (const [, , hazard] of nonMembers) expect(hazard).toMatch(/^nonmember-held-out\+/);
    for (const [, memberId] of heldTruth) if (memberId) expect(heldRoster.has(memberId!)).toBe(true);
    // Seeded: the same originals are held out every time.
    const again = path.join(work, 'held-out-again');
    await febrlToEvaluationFiles(path.join('fixtures', 'febrl3.csv'), again, { holdOut: 0.2 });
    expect(await readFile(path.join(again, 'truth.csv'), 'utf8')).toBe(await readFile(path.join(dir, 'truth.csv'), 'utf8'));
  });

  it('is reproducible', async () => {
    const again = path.join(work, 'again');
    await febrlToEvaluationFiles(path.join('fixtures', 'febrl3.csv'), again);
    expect(await readFile(path.join(again, 'queries.ndjson'), 'utf8')).toBe(queries.join('\n') + '\n');
    expect(await readFile(path.join(again, 'roster.csv'), 'utf8')).toBe(roster);
  });

  it('reads FEBRL dates only when they are real calendar dates', () => {
    expect(febrlDate('19560409')).toBe('1956-04-09');
    expect(febrlDate(' 19560409 ')).toBe('1956-04-09');
    expect(febrlDate('19551192')).toBeUndefined();
    expect(febrlDate('19390184')).toBeUndefined();
    expect(febrlDate('')).toBeUndefined();
  });
});

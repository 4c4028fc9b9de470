import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { readRosterCsv } from '../src/members/roster-format/csv-reader.js';
import { validateRosterRow } from '../src/members/roster-format/validate.js';
import { typo } from '../tools/synth/hazards.js';
import { generateSynthetic, queryLine, runSynth, truthLine, writeSynthetic } from '../tools/synth/index.js';
import { nameTables, properCase } from '../tools/synth/names.js';
import { ROSTER_HEADER, rosterLine } from '../tools/synth/output.js';
import { createRng, sampleDistinct } from '../tools/synth/random.js';

const FILES = ['roster.csv', 'queries.ndjson', 'truth.csv'] as const;
const OPTIONS = { members: 1500, queries: 300, seed: 11 };

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'synth-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function readAll(dir: string): Promise<Record<(typeof FILES)[number], string>> {
  const [roster, queries, truth] = await Promise.all(FILES.map((f) => readFile(path.join(dir, f), 'utf8')));
  return { 'roster.csv': roster as string, 'queries.ndjson': queries as string, 'truth.csv': truth as string };
}

/** Reads roster text through the importer's own CSV reader and row validation. */
async function importCheck(text: string): Promise<{ rows: number; rejected: string[]; memberIds: Set<string> }> {
  const rejected: string[] = [];
  const memberIds = new Set<string>();
  let rows = 0;
  for await (const event of readRosterCsv(Readable.from([text]))) {
    rows++;
    if ('reason' in event) {
      rejected.push(`line ${event.line}: ${event.reason}`);
      continue;
    }
    const result = validateRosterRow(event.fields);
    if (!result.ok) rejected.push(`line ${event.line}: ${result.reason}`);
    else memberIds.add(result.member.memberId);
  }
  return { rows, rejected, memberIds };
}

function parseTruth(text: string): { queryId: string; memberId: string; hazard: string }[] {
  const [header, ...lines] = text.trimEnd().split('\n');
  expect(header).toBe('query_id,member_id,hazard');
  return lines.map((line) => {
    const [queryId, memberId, hazard] = line.split(',');
    return { queryId: queryId as string, memberId: memberId as string, hazard: hazard as string };
  });
}

describe('synthetic generator', () => {
  it('writes byte-identical files for the same seed and different files for another seed', async () => {
    const a = path.join(work, 'a');
    const b = path.join(work, 'b');
    const c = path.join(work, 'c');
    await writeSynthetic(a, OPTIONS);
    await writeSynthetic(b, OPTIONS);
    await writeSynthetic(c, { ...OPTIONS, seed: 12 });
    const [filesA, filesB, filesC] = await Promise.all([readAll(a), readAll(b), readAll(c)]);
    for (const file of FILES) {
      expect(filesA[file] === filesB[file], `${file} differs between two runs with one seed`).toBe(true);
      expect(filesA[file] === filesC[file], `${file} is the same for seeds 11 and 12`).toBe(false);
    }
  });

  it('streams exactly what generateSynthetic builds in memory', async () => {
    const dir = path.join(work, 'memory');
    const summary = await writeSynthetic(dir, OPTIONS);
    const data = generateSynthetic(OPTIONS);
    const files = await readAll(dir);
    expect(files['roster.csv']).toBe(ROSTER_HEADER + data.roster.map(rosterLine).join(''));
    expect(files['queries.ndjson']).toBe(data.queries.map(queryLine).join(''));
    expect(files['truth.csv']).toBe('query_id,member_id,hazard\n' + data.truth.map(truthLine).join(''));
    expect(summary).toEqual({
      members: OPTIONS.members,
      queries: OPTIONS.queries,
      nonMembers: data.truth.filter((t) => t.memberId === null).length,
    });
  });

  describe('one generated set', () => {
    let files: Awaited<ReturnType<typeof readAll>>;
    let summary: Awaited<ReturnType<typeof runSynth>>;
    beforeAll(async () => {
      const dir = path.join(work, 'set');
      summary = await runSynth({ ...OPTIONS, out: dir });
      files = await readAll(dir);
    });

    it('imports with zero rejected rows and exactly the requested members', async () => {
      const { rows, rejected, memberIds } = await importCheck(files['roster.csv']);
      expect(rejected).toEqual([]);
      expect(memberIds.size).toBe(OPTIONS.members);
      expect(rows).toBeGreaterThanOrEqual(OPTIONS.members); // members with a dental coverage have two rows
      expect(summary.members).toBe(OPTIONS.members);
    });

    it('emits queries that all parse as HRex $member-match requests, without Consent', () => {
      const lines = files['queries.ndjson'].trimEnd().split('\n');
      expect(lines).toHaveLength(OPTIONS.queries);
      lines.forEach((line, i) => {
        const { id, parameters } = JSON.parse(line) as { id: string; parameters: unknown };
        expect(id).toBe(`q${String(i + 1).padStart(7, '0')}`);
        const request = parseMemberMatchRequest(parameters);
        expect(request.consent).toBeUndefined();
        expect(request.coverageToLink).toBeDefined();
        expect(request.cardIdentifiers.length).toBeGreaterThan(0);
        expect(request.memberPatient.id).toBe('1');
      });
    });

    it('gives truth for every query, naming members that are in the roster', async () => {
      const truth = parseTruth(files['truth.csv']);
      const queryIds = files['queries.ndjson']
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id);
      expect(truth.map((t) => t.queryId)).toEqual(queryIds);
      const { memberIds } = await importCheck(files['roster.csv']);
      for (const t of truth.filter((t) => t.memberId !== '')) expect(memberIds.has(t.memberId), t.memberId).toBe(true);
      for (const t of truth.filter((t) => t.memberId === '')) expect(t.hazard).toMatch(/^nonmember-/);
    });

    it('has at least 20 % non-members, with hard cases among them', () => {
      const truth = parseTruth(files['truth.csv']);
      const nonMembers = truth.filter((t) => t.memberId === '');
      expect(nonMembers.length / truth.length).toBeGreaterThanOrEqual(0.2);
      expect(summary.nonMembers).toBe(nonMembers.length);
      const kinds = new Set(nonMembers.map((t) => (t.hazard.split('+')[0] as string).replace('nonmember-', '')));
      for (const kind of ['twin', 'jrsr', 'stranger', 'namesake', 'sibling', 'parent']) expect(kinds).toContain(kind);
      // The hard kinds outnumber the strangers.
      expect(nonMembers.filter((t) => !t.hazard.startsWith('nonmember-stranger')).length).toBeGreaterThan(nonMembers.length / 2);
    });

    it('mixes hazards at plausible rates: most queries carry zero to two', () => {
      const truth = parseTruth(files['truth.csv']);
      const tags = truth.flatMap((t) => t.hazard.split('+'));
      for (const tag of ['exact', 'nickname', 'typo-given', 'typo-family', 'married-name', 'moved', 'dob-digit', 'no-card']) {
        expect(tags).toContain(tag);
      }
      const demographic = (t: { hazard: string }) =>
        t.hazard.split('+').filter((h) => !/^(exact|no-card|card-typo|household-card|nonmember-.*)$/.test(h)).length;
      const upToTwo = truth.filter((t) => demographic(t) <= 2).length;
      expect(upToTwo / truth.length).toBeGreaterThan(0.85);
      // identifierShare 0.5: about half the member queries have no usable card.
      const members = truth.filter((t) => t.memberId !== '');
      const noCard = members.filter((t) => t.hazard.split('+').includes('no-card')).length / members.length;
      expect(noCard).toBeGreaterThan(0.4);
      expect(noCard).toBeLessThan(0.6);
    });

    it('sends the member id or subscriber id of the card when the query has one, and an unissued id otherwise', async () => {
      const truth = parseTruth(files['truth.csv']);
      const roster = files['roster.csv'].trimEnd().split('\n').slice(1);
      const issued = new Set(roster.flatMap((line) => line.split(',').slice(0, 2)));
      files['queries.ndjson']
        .trimEnd()
        .split('\n')
        .forEach((line, i) => {
          const t = truth[i] as (typeof truth)[number];
          const request = parseMemberMatchRequest((JSON.parse(line) as { parameters: unknown }).parameters);
          const hazards = t.hazard.split('+');
          const known = request.cardIdentifiers.some((id) => issued.has(id));
          if (hazards.includes('no-card') || (t.memberId === '' && !hazards.includes('household-card'))) {
            expect(known, `${t.queryId} carries an issued id`).toBe(false);
          } else if (t.memberId !== '' && !hazards.includes('card-typo')) {
            expect(known, `${t.queryId} lacks its card id`).toBe(true);
          }
        });
    });

    it('builds households with twins, Jr/Sr pairs, middle names, diacritics and missing contact data', () => {
      const [header, ...records] = parse(files['roster.csv']) as string[][];
      const col = (name: string) => (header as string[]).indexOf(name);
      const members = new Map<string, string[]>();
      for (const cells of records) members.set(cells[0] as string, cells);
      const rows = [...members.values()];
      const bySubscriber = new Map<string, string[][]>();
      for (const r of rows) bySubscriber.set(r[col('subscriber_id')] as string, [...(bySubscriber.get(r[col('subscriber_id')] as string) ?? []), r]);
      let twins = 0;
      let jrSr = 0;
      for (const household of bySubscriber.values()) {
        const children = household.filter((r) => r[col('relationship')] === 'child');
        const births = children.map((r) => r[col('birth_date')]);
        if (new Set(births).size < births.length) twins++;
        const self = household.find((r) => r[col('relationship')] === 'self');
        if (self && children.some((c) => c[col('given')] === self[col('given')] && c[col('family')] === self[col('family')])) jrSr++;
      }
      expect(twins).toBeGreaterThan(0);
      expect(jrSr).toBeGreaterThan(0);
      expect(rows.some((r) => r[col('relationship')] === 'spouse')).toBe(true);
      expect(rows.filter((r) => r[col('middle')] !== '').length / rows.length).toBeGreaterThan(0.25);
      expect(rows.some((r) => /[^\x20-\x7e]/.test(`${r[col('given')]}${r[col('family')]}`))).toBe(true);
      expect(rows.some((r) => r[col('family')]?.includes('-'))).toBe(true);
      expect(rows.some((r) => r[col('family')]?.includes(' '))).toBe(true);
      expect(rows.some((r) => r[col('phone')] === '')).toBe(true);
      expect(rows.some((r) => r[col('email')] === '')).toBe(true);
    });
  });

  it('keeps fixtures/eval-small reproducible (members 2000, queries 400, seed 7)', async () => {
    const dir = path.join(work, 'eval-small');
    await runSynth({ members: 2000, queries: 400, seed: 7, out: dir });
    const [fresh, committed] = await Promise.all([readAll(dir), readAll(path.join('fixtures', 'eval-small'))]);
    for (const file of FILES) {
      expect(
        fresh[file] === committed[file],
        `fixtures/eval-small/${file} is stale: regenerate with runSynth({ members: 2000, queries: 400, seed: 7, out: 'fixtures/eval-small' })`,
      ).toBe(true);
    }
  });
});

describe('synthetic building blocks', () => {
  it('draws surnames from an embedded list with the Census head and a long tail', () => {
    const tables = nameTables();
    expect(tables.surnameCount).toBeGreaterThan(1000);
    const rng = createRng(3);
    const counts = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      const name = tables.surnames.sample(rng).name;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    const ranked = [...counts].sort((a, b) => b[1] - a[1]).map(([name]) => name);
    expect(ranked.slice(0, 3)).toEqual(['Smith', 'Johnson', 'Williams']);
    expect(counts.size).toBeGreaterThan(5000);
  });

  it('proper-cases names the way rosters write them', () => {
    expect(properCase("O'BRIEN")).toBe("O'Brien");
    expect(properCase('MCDONALD')).toBe('McDonald');
    expect(properCase('DE LA CRUZ')).toBe('De La Cruz');
    expect(properCase('GARCIA-LOPEZ')).toBe('Garcia-Lopez');
  });

  it('makes one-edit typos that keep the capitalisation', () => {
    const rng = createRng(5);
    for (let i = 0; i < 200; i++) {
      const changed = typo(rng, 'Jennifer') as string;
      expect(changed).not.toBe('Jennifer');
      expect(changed[0]).toMatch(/[A-Z]/);
      expect(Math.abs(changed.length - 8)).toBeLessThanOrEqual(1);
    }
    expect(typo(rng, 'Al')).toBeUndefined();
  });

  it('samples distinct ordinals, repeating only when asked for more than exist', () => {
    const rng = createRng(9);
    const few = sampleDistinct(rng, 100, 40);
    expect(new Set(few).size).toBe(40);
    expect(few.every((n) => n >= 0 && n < 100)).toBe(true);
    const many = sampleDistinct(rng, 10, 25);
    expect(many).toHaveLength(25);
    expect(new Set(many).size).toBe(10);
  });

  it('generates only non-members when the roster is empty', () => {
    const data = generateSynthetic({ members: 0, queries: 5, seed: 1 });
    expect(data.roster).toEqual([]);
    expect(data.truth.every((t) => t.memberId === null && t.hazard.startsWith('nonmember-stranger'))).toBe(true);
  });
});

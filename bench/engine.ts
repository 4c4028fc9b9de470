/**
 * npm run bench:engine [-- --passes N]
 *
 * The matching engine alone, without HTTP, Postgres or Redis: normalise → block (an in-memory index) →
 * compare → score → decide for every query of fixtures/eval-small (2,000 members, 400 queries) against the
 * members sharing a blocking key with it, N passes (default 100), three rounds. Prints decisions per second and
 * CPU-time per candidate pair, with the load average before it starts. Used to compare matching code before and
 * after a change (run it in two checkouts, interleaved): the end-to-end bench (bench:member-match) barely sees the
 * engine, about a tenth of an API process's CPU at 1 M members (docs/benchmarks.md). Its queries have about two
 * candidates each; a 1 M index gives about 28, where ranking without explanations pays (docs/benchmarks.md).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { memberBlockingKeys, queryBlockingKeys } from '../src/matching/blocking.js';
import { DEFAULT_THRESHOLDS } from '../src/matching/decision.js';
import { decide, type Candidate } from '../src/matching/decide.js';
import { normalizePerson } from '../src/matching/normalize.js';
import { offeredPerson, parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { DEFAULT_MODEL_FILE, readModelFile } from '../src/members/model-store.js';
import { projectFile } from '../src/project-files.js';

const { values } = parseArgs({ options: { passes: { type: 'string', default: '100' } } });
const passes = Number(values.passes);
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; load average before start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

const model = readModelFile(DEFAULT_MODEL_FILE);
const rows = parse(readFileSync(projectFile('fixtures', 'eval-small', 'roster.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
const members: Candidate[] = rows.map((r) => ({
  memberUuid: r.member_id!,
  memberId: r.member_id!,
  cardHit: false,
  person: normalizePerson({ given: r.given, middle: r.middle, family: r.family, suffix: r.suffix, birthDate: r.birth_date, sex: r.gender, addressLine: r.address_line, city: r.city, state: r.state, postalCode: r.postal_code, phone: r.phone, email: r.email }),
}));
const index = new Map<string, Candidate[]>();
for (const m of members) for (const key of memberBlockingKeys(m.person)) index.set(key, [...(index.get(key) ?? []), m]);
const work = readFileSync(projectFile('fixtures', 'eval-small', 'queries.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => {
    const person = normalizePerson(offeredPerson(parseMemberMatchRequest((JSON.parse(line) as { parameters: unknown }).parameters)));
    const candidates = new Map<string, Candidate>();
    for (const key of queryBlockingKeys(person)) for (const m of index.get(key) ?? []) candidates.set(m.memberUuid, m);
    return { person, candidates: [...candidates.values()] };
  });
const pairs = work.reduce((n, w) => n + w.candidates.length, 0);

for (const round of [1, 2, 3]) {
  const started = process.cpuUsage();
  for (let i = 0; i < passes; i++) for (const w of work) decide(model, DEFAULT_THRESHOLDS, w.person, w.candidates);
  const used = process.cpuUsage(started);
  const seconds = (used.user + used.system) / 1e6;
  console.log(`round ${round}: ${((passes * work.length) / seconds).toFixed(0)} decisions per CPU-second, ${((seconds * 1e6) / (passes * pairs)).toFixed(2)} µs CPU per candidate pair (${work.length} queries, ${pairs} pairs per pass, model ${model.version})`);
}

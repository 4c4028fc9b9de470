/**
 * npx tsx bench/engine-replay.ts DATABASE_URL QUERIES.ndjson [N] — the matching engine's CPU on a real index's
 * candidates: resolves the first N (default 2,000) well-formed requests of a query file against the index in
 * DATABASE_URL (e.g. bench:member-match's 1 M scratch database) in the pipeline's groups (`PEOPLE_PER_QUERY`), recording
 * every candidate lookup; then replays the recorded lookups through `resolveMembers` five times and prints the
 * CPU a query and the candidates a query. No database and no decoding in the replay: normalise, rank, decide and
 * both blocking passes only. bench:engine's fixture queries have about two candidates each; a 1 M index gives
 * about 28, which is where the engine's cost per candidate shows. To compare code before and after a change, run
 * it in two checkouts on the same database, alternated (docs/benchmarks.md, fifth session).
 */
import { createDb } from '../src/db/database.js';
import { offeredPerson, parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { DEFAULT_THRESHOLDS } from '../src/matching/decision.js';
import { resolveMembers, type CandidateLookups, type CandidateQuery, type CandidateSource } from '../src/matching/engine.js';
import type { PersonFields } from '../src/matching/record.js';
import { memberIndexCandidates } from '../src/members/candidate-source.js';
import { DEFAULT_MODEL_FILE, readModelFile } from '../src/members/model-store.js';
import { PEOPLE_PER_QUERY } from '../src/pipeline/plan.js';
import { readQueries } from '../tools/evaluation/files.js';
import { DEFAULT_BLOCK_CAP } from './query-keys.js';

const [databaseUrl, queryFile, limitArg] = process.argv.slice(2);
if (!databaseUrl || !queryFile) throw new Error('usage: tsx bench/engine-replay.ts DATABASE_URL QUERIES.ndjson [N]');
const limit = Number(limitArg ?? 2_000);

const model = readModelFile(DEFAULT_MODEL_FILE);
const options = { model, thresholds: DEFAULT_THRESHOLDS };
const people: PersonFields[] = [];
for await (const query of readQueries(queryFile)) {
  if (people.length >= limit) break;
  try {
    people.push(offeredPerson(parseMemberMatchRequest(query.parameters)));
  } catch {
    // malformed requests are skipped, as bench/query-keys.ts does
  }
}
const groups: PersonFields[][] = [];
// Grouped as the pipeline groups people into one candidate query.
for (let i = 0; i < people.length; i += PEOPLE_PER_QUERY) groups.push(people.slice(i, i + PEOPLE_PER_QUERY));

const db = createDb(databaseUrl, 1);
const index = memberIndexCandidates(db, DEFAULT_BLOCK_CAP);
const recorded: CandidateLookups[] = [];
const recorder: CandidateSource = {
  async lookup(queries: readonly CandidateQuery[]) {
    const lookups = await index.lookup(queries);
    recorded.push(lookups);
    return lookups;
  },
};
for (const group of groups) await resolveMembers(recorder, options, group.map((offered) => ({ offered })));
await db.destroy();

for (let round = 1; round <= 5; round++) {
  let next = 0;
  const replay: CandidateSource = { lookup: () => Promise.resolve(recorded[next++]!) };
  let candidates = 0;
  const cpu = process.cpuUsage();
  for (const group of groups) {
    for (const resolution of await resolveMembers(replay, options, group.map((offered) => ({ offered })))) candidates += resolution.candidateMemberIds.length;
  }
  const used = process.cpuUsage(cpu);
  console.log(
    `round ${round}: ${((used.user + used.system) / people.length).toFixed(1)} µs CPU a query, ${(candidates / people.length).toFixed(1)} candidates a query (${people.length} queries, model ${model.version})`,
  );
}

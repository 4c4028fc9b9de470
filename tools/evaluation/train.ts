import { checkModel } from '../../src/matching/diagnostics.js';
import { DEFAULT_THRESHOLDS, type DecisionThresholds } from '../../src/matching/decision.js';
import { createHash } from 'node:crypto';
import type { Db } from '../../src/db/database.js';
import { offeredPerson, parseMemberMatchRequest } from '../../src/fhir/member-match-request.js';
import { compareRecords } from '../../src/matching/comparisons.js';
import { loadCandidateMembers } from '../../src/members/member-index.js';
import { countMembers, sampleMemberIds } from '../../src/members/member-repository.js';
import type { StoredModel } from '../../src/members/model-store.js';
import { personFromProfile } from '../../src/matching/profile.js';
import type { ComparisonVector } from '../../src/matching/comparisons.js';
import { findCandidates } from '../../src/matching/engine.js';
import { memberIndexCandidates } from '../../src/members/candidate-source.js';
import { compareCandidate } from '../../src/matching/decide.js';
import { nameFrequencies } from '../../src/members/term-frequencies.js';
import { buildParameters, levelFrequencies, trainBySessions, type BlockedPair, type SessionReport } from '../../src/matching/training.js';
import { blockKind, memberBlockingKeys, queryBlockingKeys } from '../../src/matching/blocking.js';
import { forEachConcurrently, readQueries, type EvaluationQuery, type TruthRow } from './files.js';

/**
 * `member-match model train`: estimates a model against an index already loaded in `db`.
 *  - u: comparisons of random member pairs (seeded: the same seed picks the same pairs);
 *  - m and λ: EM over the blocked (query, candidate) pairs of a query file, or — with a truth file — the
 *    level frequencies of the labelled matching pairs, λ their share of the blocked pairs;
 *  - term frequencies of family and first given names over the whole index.
 */

export interface TrainOptions {
  queriesFile: string;
  truth?: Map<string, TruthRow> | undefined;
  seed: number;
  /** Random member pairs for u. */
  uPairs?: number;
  blockCap: number;
  /** The thresholds whose estimated error rates the model's diagnostics report (default: the service's defaults). */
  thresholds?: DecisionThresholds;
  log?: (message: string) => void;
}

/** mulberry32: a tiny seeded PRNG, so training is reproducible for a seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function randomPairVectors(db: Db, seed: number, pairs: number): Promise<ComparisonVector[]> {
  const sampleSize = Math.min(5_000, Math.max(2, Math.ceil(Math.sqrt(pairs) * 4)));
  const members = await loadCandidateMembers(db, await sampleMemberIds(db, seed, sampleSize));
  members.sort((a, b) => a.memberId.localeCompare(b.memberId));
  const people = members.map((m) => personFromProfile(m.profile, m.fields));
  const random = seededRandom(seed);
  const vectors: ComparisonVector[] = [];
  while (vectors.length < pairs && people.length > 1) {
    const i = Math.floor(random() * people.length);
    const j = Math.floor(random() * people.length);
    if (i !== j) vectors.push(compareRecords(people[i]!, people[j]!));
  }
  return vectors;
}

function vectorKey(pair: BlockedPair): string {
  return `${Object.values(pair.vector).join(',')}|${[...pair.kinds].sort().join(',')}`;
}

export async function trainModel(db: Db, options: TrainOptions): Promise<StoredModel> {
  const log = options.log ?? (() => undefined);
  const uPairs = options.uPairs ?? 50_000;
  const uVectors = await randomPairVectors(db, options.seed, uPairs);
  const u = levelFrequencies(uVectors);
  log(`u from ${uVectors.length} random member pairs`);

  const blocked: BlockedPair[] = [];
  const labelledMatches: ComparisonVector[] = [];
  let queries = 0;
  const work = async (query: EvaluationQuery) => {
    let request;
    try {
      request = parseMemberMatchRequest(query.parameters);
    } catch {
      return;
    }
    queries++;
    const { query: person, candidates } = await findCandidates(memberIndexCandidates(db, options.blockCap), offeredPerson(request));
    const queryKeys = new Set(queryBlockingKeys(person));
    const expected = options.truth?.get(query.id)?.memberId;
    for (const candidate of candidates) {
      const vector = compareCandidate(person, candidate);
      const kinds = new Set(memberBlockingKeys(candidate.person).filter((k) => queryKeys.has(k)).map(blockKind));
      if (candidate.cardHit) kinds.add('card');
      blocked.push({ vector, kinds });
      if (expected && candidate.memberId === expected) labelledMatches.push(vector);
    }
  };
  await forEachConcurrently(readQueries(options.queriesFile), 8, work);
  // Arrival order depends on timing: sort so training is reproducible.
  blocked.sort((a, b) => vectorKey(a).localeCompare(vectorKey(b)));
  labelledMatches.sort((a, b) => Object.values(a).join().localeCompare(Object.values(b).join()));
  log(`${blocked.length} blocked pairs from ${queries} queries`);

  let m;
  let lambda;
  let method: string;
  let sessions: SessionReport[] | undefined;
  if (options.truth) {
    m = levelFrequencies(labelledMatches);
    lambda = labelledMatches.length / Math.max(blocked.length, 1);
    method = 'labelled';
  } else {
    const result = trainBySessions(blocked, u);
    m = result.m;
    lambda = result.lambda;
    method = 'em';
    sessions = result.sessions;
    for (const s of result.sessions) {
      log(`EM session ${s.session}: ${s.pairs} pairs, ${s.converged ? 'converged' : 'stopped'} after ${s.iterations} iterations, λ = ${s.lambda.toPrecision(4)}`);
    }
  }

  const parameters = buildParameters(m, u, lambda, {
    family: await nameFrequencies(db, 'family'),
    given: await nameFrequencies(db, 'given'),
  });
  const digest = createHash('sha256').update(JSON.stringify(parameters)).digest('hex').slice(0, 10);
  const diagnostics = checkModel(parameters, options.thresholds ?? DEFAULT_THRESHOLDS, sessions);
  for (const c of diagnostics.checks) log(`${c.passed ? 'pass' : 'FAIL'}  ${c.check}: ${c.detail}`);
  const memberCount = await countMembers(db);
  return {
    version: `fs-${method}-${digest}`,
    parameters,
    training: {
      method,
      seed: options.seed,
      members: memberCount,
      queries,
      blockedPairs: blocked.length,
      labelledMatches: labelledMatches.length,
      randomPairs: uVectors.length,
      ...(sessions ? { sessions } : {}),
      diagnostics,
    },
  };
}

import { blockKind, queryBlockingKeys } from './blocking.js';
import type { DecisionThresholds, MatchDecision } from './decision.js';
import { decideRanked, extendRanking, rankCandidates, type Candidate, type RankedCandidate } from './decide.js';
import type { MatchModel } from './model.js';
import { normalizePerson } from './normalize.js';
import type { NormalizedPerson, PersonFields } from './record.js';

/**
 * The matching engine: normalise → block → compare → score → decide. Pure — it reads candidates through a
 * `CandidateSource` (the member index implements one over Postgres: src/members/candidate-source.ts), so it
 * imports nothing from storage, HTTP or queues. The API, batch jobs and the evaluation all call it, so the
 * evaluation measures exactly what partners get.
 */

/** What to look up for one person: the blocking keys to read and the card values to follow. */
export interface CandidateQuery {
  blockKeys: readonly string[];
  cardValues: readonly string[];
}

export interface CandidateLookup {
  candidates: Candidate[];
  /** Keys whose block was too large and was skipped, never scanned. */
  oversizedKeys: string[];
}

export interface CandidateLookups {
  /** One per query, in order. */
  lookups: CandidateLookup[];
  /** The version of the match model active when the candidates were read, where the source knows it. */
  activeModelVersion?: string | undefined;
}

/** Where candidates come from: one lookup per query, in order, in as few round trips as the source can manage. */
export interface CandidateSource {
  lookup(queries: readonly CandidateQuery[]): Promise<CandidateLookups>;
}

export interface ResolverOptions {
  model: MatchModel;
  /**
   * The model of a version the candidate source reports active when it is not `model` (one activated since
   * `model` was read): the batch is then scored by it. Without it, `model` scores whatever the source says.
   */
  modelOfVersion?: ((version: string) => Promise<MatchModel>) | undefined;
  thresholds: DecisionThresholds;
}
export interface Resolution {
  decision: MatchDecision;
  /** Kinds (never values) of blocks skipped for size: the caller logs them. */
  oversizedBlockKinds: string[];
  /** Member ids of every candidate scored (for measuring blocking recall). */
  candidateMemberIds: string[];
}

export interface CandidateSet {
  query: NormalizedPerson;
  candidates: Candidate[];
  oversizedBlockKinds: string[];
}

/** normalise → block: the query, normalised, and every member sharing a block or a card identifier with it. */
export async function findCandidates(
  source: CandidateSource,
  offered: PersonFields,
  query: NormalizedPerson = normalizePerson(offered),
  only: { blockKeys?: readonly string[]; cards?: boolean } = {},
): Promise<CandidateSet> {
  const {
    lookups: [lookup],
  } = await source.lookup([
    {
      blockKeys: only.blockKeys ?? queryBlockingKeys(query),
      cardValues: only.cards === false ? [] : cardValues(offered, query),
    },
  ]);
  return { query, candidates: lookup!.candidates, oversizedBlockKinds: kinds(lookup!.oversizedKeys) };
}

function cardValues(offered: PersonFields, query: NormalizedPerson): string[] {
  return [...new Set([...(offered.identifiers ?? []), ...query.identifiers])];
}

/**
 * The blocks searched first: a member sharing given and family name, a name and a ZIP, a phone, an e-mail or
 * a card with the query. When these settle the question — an automatic match, which needs a clear margin
 * over every other candidate — the wide blocks (everyone born that day, or that year under the same family
 * sound, or with that given name and birthday) are not searched: a member they alone would add shares no
 * name-and-place, contact or card with the query, so scores far below a confirmed match and cannot come
 * within its margin. Anything short of a match searches every block, so review and no-match see all
 * candidates. On the synthetic 1M index this scores about 15 candidates per matched query instead of 107,
 * and changed no decision (docs/benchmarks.md, docs/architecture.md).
 */
export const FIRST_PASS_BLOCKS = new Set(['gf', 'gz', 'fz', 'p', 'e']);

/** One person to resolve; `normalized` lets a caller that already normalised the offered demographics skip doing it again. */
export interface ResolutionRequest {
  offered: PersonFields;
  normalized?: NormalizedPerson | undefined;
}

/**
 * Resolves a batch of people with two round trips at most, whatever the batch's size: the first-pass blocks
 * of all of them, then the remaining blocks of those the first pass did not settle. One person is a batch of one.
 */
export async function resolveMembers(source: CandidateSource, options: ResolverOptions, requests: readonly ResolutionRequest[]): Promise<Resolution[]> {
  const queries = requests.map((r) => r.normalized ?? normalizePerson(r.offered));
  const keys = queries.map(queryBlockingKeys);
  const { lookups: first, activeModelVersion } = await source.lookup(
    requests.map((r, i) => ({
      blockKeys: keys[i]!.filter((k) => FIRST_PASS_BLOCKS.has(blockKind(k))),
      cardValues: cardValues(r.offered, queries[i]!),
    })),
  );
  const model =
    activeModelVersion !== undefined && activeModelVersion !== options.model.version && options.modelOfVersion
      ? await options.modelOfVersion(activeModelVersion)
      : options.model;
  const resolutions: Resolution[] = new Array<Resolution>(requests.length);
  const firstRankings: RankedCandidate[][] = new Array<RankedCandidate[]>(requests.length);
  const unsettled: number[] = [];
  for (let i = 0; i < first.length; i++) {
    const lookup = first[i]!;
    const candidates = lookup.candidates;
    const ranking = rankCandidates(model, queries[i]!, candidates);
    firstRankings[i] = ranking;
    const decision = decideRanked(model, options.thresholds, queries[i]!, ranking);
    resolutions[i] = { decision, oversizedBlockKinds: kinds(lookup.oversizedKeys), candidateMemberIds: candidates.map((c) => c.memberId) };
    if (decision.outcome !== 'matched') unsettled.push(i);
  }
  if (unsettled.length === 0) return resolutions;
  const { lookups: rest } = await source.lookup(unsettled.map((i) => ({ blockKeys: keys[i]!.filter((k) => !FIRST_PASS_BLOCKS.has(blockKind(k))), cardValues: [] })));
  for (let k = 0; k < rest.length; k++) {
    const lookup = rest[k]!;
    const i = unsettled[k]!;
    const seen = new Set(first[i]!.candidates.map((m) => m.memberUuid));
    const added = lookup.candidates.filter((m) => !seen.has(m.memberUuid));
    const candidates = [...first[i]!.candidates, ...added];
    // The first pass's candidates keep their comparison: only the wide blocks' newcomers are compared.
    resolutions[i] = {
      decision: decideRanked(model, options.thresholds, queries[i]!, extendRanking(model, queries[i]!, firstRankings[i]!, added)),
      oversizedBlockKinds: kinds([...first[i]!.oversizedKeys, ...lookup.oversizedKeys]),
      candidateMemberIds: candidates.map((c) => c.memberId),
    };
  }
  return resolutions;
}

export async function resolveMember(source: CandidateSource, options: ResolverOptions, offered: PersonFields, normalized?: NormalizedPerson): Promise<Resolution> {
  return (await resolveMembers(source, options, [{ offered, normalized }]))[0]!;
}

function kinds(keys: readonly string[]): string[] {
  return [...new Set(keys.map(blockKind))];
}

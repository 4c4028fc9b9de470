import type { DbOrTx } from '../db/database.js';
import { findCandidateMembers } from '../members/member-index.js';
import { blockKind, queryBlockingKeys } from './blocking.js';
import type { DecisionThresholds, MatchDecision } from './decision.js';
import type { MatchModel } from './model.js';
import { normalizePerson } from './normalize.js';
import { personFromProfile } from './profile.js';
import type { NormalizedPerson, PersonFields } from './record.js';
import { decide, type Candidate } from './resolve.js';

/**
 * normalise → block → compare → score → decide, against the member index in Postgres. The API, batch jobs
 * and the evaluation all call this, so the evaluation measures exactly what partners get.
 */

export interface ResolverOptions {
  model: MatchModel;
  thresholds: DecisionThresholds;
  /** A block with more members than this is skipped, never scanned. */
  blockCap: number;
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
  db: DbOrTx,
  blockCap: number,
  offered: PersonFields,
  query: NormalizedPerson = normalizePerson(offered),
  only: { blockKeys?: readonly string[]; cards?: boolean } = {},
): Promise<CandidateSet> {
  const { members, oversizedKeys } = await findCandidateMembers(db, {
    blockKeys: only.blockKeys ?? queryBlockingKeys(query),
    cardValues: only.cards === false ? [] : [...new Set([...(offered.identifiers ?? []), ...query.identifiers])],
    blockCap,
  });
  return {
    query,
    candidates: members.map((m) => ({
      memberUuid: m.memberUuid,
      memberId: m.memberId,
      person: personFromProfile(m.profile, m.fields),
      cardHit: m.cardHit,
    })),
    oversizedBlockKinds: [...new Set(oversizedKeys.map(blockKind))],
  };
}

/**
 * The blocks searched first: a member sharing given and family name, a name and a ZIP, a phone, an e-mail or
 * a card with the query. When these settle the question — an automatic match, which needs a clear margin
 * over every other candidate — the wide blocks (everyone born that day, or that year under the same family
 * sound, or with that given name and birthday) are not searched: a member they alone would add shares no
 * name-and-place, contact or card with the query, so scores far below a confirmed match and cannot come
 * within its margin. Anything short of a match searches every block, so review and no-match see all
 * candidates. On the synthetic 1M index this scores about 15 candidates per matched query instead of 107,
 * and changed no decision (README "Batch throughput").
 */
const FIRST_PASS_BLOCKS = new Set(['gf', 'gz', 'fz', 'p', 'e']);

/** `normalized` lets a caller that already normalised the offered demographics skip doing it again. */
export async function resolveMember(db: DbOrTx, options: ResolverOptions, offered: PersonFields, normalized?: NormalizedPerson): Promise<Resolution> {
  const query = normalized ?? normalizePerson(offered);
  const keys = queryBlockingKeys(query);
  const firstKeys = keys.filter((k) => FIRST_PASS_BLOCKS.has(blockKind(k)));
  const first = await findCandidates(db, options.blockCap, offered, query, { blockKeys: firstKeys });
  const firstDecision = decide(options.model, options.thresholds, query, first.candidates);
  if (firstDecision.outcome === 'matched') {
    return { decision: firstDecision, oversizedBlockKinds: first.oversizedBlockKinds, candidateMemberIds: first.candidates.map((c) => c.memberId) };
  }
  const rest = await findCandidates(db, options.blockCap, offered, query, { blockKeys: keys.filter((k) => !FIRST_PASS_BLOCKS.has(blockKind(k))), cards: false });
  const seen = new Set(first.candidates.map((c) => c.memberUuid));
  const candidates = [...first.candidates, ...rest.candidates.filter((c) => !seen.has(c.memberUuid))];
  return {
    decision: decide(options.model, options.thresholds, query, candidates),
    oversizedBlockKinds: [...new Set([...first.oversizedBlockKinds, ...rest.oversizedBlockKinds])],
    candidateMemberIds: candidates.map((c) => c.memberId),
  };
}

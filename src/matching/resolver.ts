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
): Promise<CandidateSet> {
  const { members, oversizedKeys } = await findCandidateMembers(db, {
    blockKeys: queryBlockingKeys(query),
    cardValues: [...new Set([...(offered.identifiers ?? []), ...query.identifiers])],
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

/** `normalized` lets a caller that already normalised the offered demographics skip doing it again. */
export async function resolveMember(db: DbOrTx, options: ResolverOptions, offered: PersonFields, normalized?: NormalizedPerson): Promise<Resolution> {
  const { query, candidates, oversizedBlockKinds } = await findCandidates(db, options.blockCap, offered, normalized);
  return {
    decision: decide(options.model, options.thresholds, query, candidates),
    oversizedBlockKinds,
    candidateMemberIds: candidates.map((c) => c.memberId),
  };
}

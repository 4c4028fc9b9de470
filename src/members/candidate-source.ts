import type { DbOrTx } from '../db/database.js';
import type { CandidateSource } from '../matching/engine.js';
import { personFromProfile } from '../matching/profile.js';
import { findCandidateMembersBatch } from './member-index.js';

/**
 * The member index as the matching engine's candidate source: one round trip per batch of queries, blocks over
 * `blockCap` skipped and reported, each candidate's stored match profile turned back into a normalised person.
 */
export function memberIndexCandidates(db: DbOrTx, blockCap: number): CandidateSource {
  return {
    async lookup(queries) {
      const { lookups, activeModelVersion } = await findCandidateMembersBatch(db, queries, blockCap);
      return {
        activeModelVersion,
        lookups: lookups.map((lookup) => ({
        oversizedKeys: lookup.oversizedKeys,
          candidates: lookup.members.map((m) => ({ memberUuid: m.memberUuid, memberId: m.memberId, person: personFromProfile(m.profile, m.fields), cardHit: m.cardHit, cardPersonal: m.cardPersonal })),
        })),
      };
    },
  };
}

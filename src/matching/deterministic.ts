import type { MatchDecision } from './decision.js';
import { givenNameKey, nameKey } from './normalize.js';

/** A member found by card data (member id, coverage id, subscriber id), before demographics confirm it. */
export interface CardCandidate {
  memberUuid: string;
  memberId: string;
  familyKey: string;
  givenKey: string;
  birthDate: string;
  gender: string | null;
}

export interface Demographics {
  names: { family: string; given: string[] }[];
  birthDate: string;
  gender: string | undefined;
}

/**
 * Card data finds candidates; demographics decide. Everyone on a family contract shares the subscriber id,
 * so a card hit alone proves nothing: the birth date must be equal and a name must agree on family and first
 * given name (twins share the first two, never the third). A gender on both sides must agree too.
 * Exactly one confirmed candidate is a match; two or more is ambiguous and never guessed between.
 */
export function resolveDeterministically(demographics: Demographics, candidates: CardCandidate[]): MatchDecision {
  const considered = candidates.length;
  if (considered === 0) return { outcome: 'no-match', reason: 'no-candidate', candidatesConsidered: 0 };

  const offeredNames = demographics.names.map((n) => ({ family: nameKey(n.family), given: givenNameKey(n.given[0]) }));
  const confirmed = candidates.filter(
    (c) =>
      c.birthDate === demographics.birthDate &&
      offeredNames.some((n) => n.family !== '' && n.family === c.familyKey && n.given !== '' && n.given === c.givenKey) &&
      !gendersConflict(demographics.gender, c.gender),
  );
  // The same member reached through several card identifiers counts once.
  const distinct = [...new Map(confirmed.map((c) => [c.memberUuid, c])).values()];

  if (distinct.length === 0) return { outcome: 'no-match', reason: 'not-confirmed', candidatesConsidered: considered };
  if (distinct.length > 1) return { outcome: 'ambiguous', candidatesConsidered: considered, confirmed: distinct.length };
  const [member] = distinct as [CardCandidate];
  return {
    outcome: 'matched',
    member: { memberUuid: member.memberUuid, memberId: member.memberId },
    method: 'deterministic',
    candidatesConsidered: considered,
  };
}

const KNOWN_GENDERS = new Set(['male', 'female']);

function gendersConflict(offered: string | undefined, stored: string | null): boolean {
  return !!offered && !!stored && KNOWN_GENDERS.has(offered) && KNOWN_GENDERS.has(stored) && offered !== stored;
}

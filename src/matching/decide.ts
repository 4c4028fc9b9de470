import { compareRecords, type ComparisonVector } from './comparisons.js';
import type { NormalizedPerson } from './record.js';
import type { DecisionThresholds, MatchDecision, ScoredCandidate } from './decision.js';
import { matchWeightOf, score, type MatchModel } from './model.js';

/**
 * compare → score → decide, for one query against its candidates. Pure: the caller has normalised the
 * query and fetched the candidates (blocks ∪ card hits).
 */

export interface Candidate {
  memberUuid: string;
  memberId: string;
  person: NormalizedPerson;
  /** The card's values reached this member (member id, coverage id or subscriber id). */
  cardHit: boolean;
  /** One of those values is this member's own member number, held by no one else: a personal card (member-index.ts). */
  cardPersonal?: boolean;
}

/** Levels of the fields that tell household members apart, good enough to auto-match on. */
const CONFIRMING_GIVEN = new Set(['exact', 'jw-high', 'one-edit']);
/** First names that only look or sound alike: they confirm only with the middle name agreeing. */
const LOOKALIKE_GIVEN = new Set(['phonetic', 'similar']);
const MIDDLE_AGREES = new Set(['exact', 'initial']);
const EXACT_BIRTH_DATE = 'exact';
/**
 * Birth-date levels that confirm only with corroboration: a namesake born days apart looks exactly like a
 * typo. A year one off on the same day and month is the same kind of slip (Jr/Sr pairs are decades apart).
 */
const NEAR_BIRTH_DATE = new Set(['transposed', 'one-digit', 'year-off-by-one', 'ten-years']);
/** Address levels that place the two at the same home: the street line agrees, exactly or but for a slip. */
const SAME_HOME = new Set(['street-and-zip', 'street-near-and-zip', 'street']);
/** Address levels that place the two at least in the same area. */
const SAME_AREA = new Set([...SAME_HOME, 'zip', 'locality']);

/**
 * Evidence a namesake does not share: current contact data (the same street line, phone or e-mail), or the
 * person's own member number on the card (`personal`: it reached this member alone and is no one's subscriber
 * id). The subscriber id does not count: every relative on the contract presents it.
 */
function corroborated(vector: ComparisonVector): boolean {
  return SAME_HOME.has(vector.address) || vector.phone === 'exact' || vector.email === 'exact' || vector.identifier === 'personal';
}

/**
 * Fellegi–Sunter assumes fields independent given match status; within a household they are not, and a
 * stranger with the same name born a digit apart is not independent of a typo either. So a pair auto-matches
 * only when the person-level fields themselves confirm it. The first name confirms when it is
 *  - exact, near-exact (Jaro–Winkler ≥ 0.92) or one typo away (`one-edit` excludes a substituted, added or
 *    dropped first letter: twins are often given rhyming names, Eva and Ava, which look exactly like that typo);
 *  - a nickname of the other (Bill, William) with corroboration or the middle name agreeing: two formal
 *    names of one nickname cluster (Mary and Marie, Jack and Jackson) are also how twins are named;
 *  - alike in sound or spelling only (`phonetic`, `similar`: a mangled typo) with the birth date exact and
 *    the middle name agreeing — twins seldom share a middle name;
 *  - the other's middle name, with the birth date exact and corroboration;
 *  - given and family names written in each other's places (both levels say so), with the birth date exact
 *    and the two at least in the same area.
 * A different first name with everything else agreeing *is* a twin, and never confirms. The birth date confirms
 * when it is exact, or transposed, one digit, one year or exactly ten years off *and* corroborated. Sex and
 * generational suffix must not contradict. Anything else at a high score goes to a reviewer.
 *
 * Corroboration guards against namesakes, strangers who happen to share a name and nearly a birth date; a
 * personal member number does that as well as a street line. It does not guard against relatives — a twin or
 * a Jr who presents the family's cards by mistake carries the member's number too — so it relaxes none of the
 * first-name or generation checks, which are what tell relatives apart. A card one digit off never
 * corroborates: twins are often issued consecutive numbers.
 */
export function identityConfirmed(vector: ComparisonVector): boolean {
  const birthDateExact = vector.birthDate === EXACT_BIRTH_DATE;
  const corroborates = corroborated(vector);
  const birthDateConfirms = birthDateExact || (NEAR_BIRTH_DATE.has(vector.birthDate) && corroborates);
  const givenConfirms =
    CONFIRMING_GIVEN.has(vector.given) ||
    (vector.given === 'nickname' && (corroborates || MIDDLE_AGREES.has(vector.middle))) ||
    (LOOKALIKE_GIVEN.has(vector.given) && birthDateExact && MIDDLE_AGREES.has(vector.middle)) ||
    (vector.given === 'swapped' && birthDateExact && (corroborates || (vector.family === 'exchanged' && SAME_AREA.has(vector.address))));
  return givenConfirms && birthDateConfirms && vector.sex !== 'different' && vector.suffix !== 'different';
}

/**
 * Field-by-field comparison of the query with a candidate. An exact identifier is the card lookup's verdict —
 * the card's values reached this member, alone (`personal`) or with others (`household`) — since the lookup
 * also sees coverages; otherwise the candidate's own values decide whether the card is one slip away.
 */
export function compareCandidate(query: NormalizedPerson, candidate: Candidate): ComparisonVector {
  const vector = compareRecords(query, candidate.person);
  if (query.identifiers.length > 0) {
    if (candidate.cardHit) vector.identifier = candidate.cardPersonal ? 'personal' : 'household';
    else if (vector.identifier !== 'one-substitution' && vector.identifier !== 'transposition') vector.identifier = 'different';
  }
  return vector;
}

/** A candidate compared and weighed, not yet explained: what ranking and the decision rule read. */
export interface RankedCandidate {
  memberUuid: string;
  memberId: string;
  cardHit: boolean;
  matchWeight: number;
  vector: ComparisonVector;
}

/** Best first: by match weight, ties by member id (a total order, so any input order ranks the same). */
function byRank(a: RankedCandidate, b: RankedCandidate): number {
  return b.matchWeight - a.matchWeight || a.memberId.localeCompare(b.memberId);
}

/**
 * compare → weigh, best first. Only match weights are computed here: a decision keeps (and explains) the top
 * {@link KEPT_CANDIDATES} of the tens a query is compared with.
 */
export function rankCandidates(model: MatchModel, query: NormalizedPerson, candidates: readonly Candidate[]): RankedCandidate[] {
  // The same member may arrive from several blocks and a card hit: score once, remember the card hit.
  const unique = new Map<string, Candidate>();
  for (const c of candidates) {
    const seen = unique.get(c.memberUuid);
    unique.set(c.memberUuid, seen ? { ...seen, cardHit: seen.cardHit || c.cardHit, cardPersonal: Boolean(seen.cardPersonal || c.cardPersonal) } : c);
  }
  const ranked: RankedCandidate[] = [];
  for (const c of unique.values()) {
    const vector = compareCandidate(query, c);
    ranked.push({ memberUuid: c.memberUuid, memberId: c.memberId, cardHit: c.cardHit, matchWeight: matchWeightOf(model.parameters, vector, query), vector });
  }
  return ranked.sort(byRank);
}

/**
 * Adds candidates not ranked yet (members none of `ranked` is) to a ranking: the result is what ranking all of
 * them at once gives, without comparing the first ones again (the second blocking pass adds to the first's).
 */
export function extendRanking(model: MatchModel, query: NormalizedPerson, ranked: readonly RankedCandidate[], more: readonly Candidate[]): RankedCandidate[] {
  return [...ranked, ...rankCandidates(model, query, more)].sort(byRank);
}

/** Candidates a decision keeps, explained: the audit trail and a review case show them. */
export const KEPT_CANDIDATES = 3;

export function decide(
  model: MatchModel,
  thresholds: DecisionThresholds,
  query: NormalizedPerson,
  candidates: readonly Candidate[],
): MatchDecision {
  return decideRanked(model, thresholds, query, rankCandidates(model, query, candidates));
}

/** The decision on a ranking: its top candidates are explained (score), then {@link decideScored} decides. */
export function decideRanked(model: MatchModel, thresholds: DecisionThresholds, query: NormalizedPerson, ranked: readonly RankedCandidate[]): MatchDecision {
  const kept = ranked.slice(0, KEPT_CANDIDATES).map((c) => {
    const s = score(model.parameters, c.vector, query);
    return { ...c, probability: s.probability, matchWeight: s.matchWeight, explanation: s.explanation };
  });
  return decideScored(model.version, thresholds, kept, ranked.length);
}

/**
 * The decision rule on candidates already scored and sorted best first, at least the top {@link KEPT_CANDIDATES}
 * of them (the evaluation's threshold sweep reuses it on the three a decision kept).
 */
export function decideScored(
  modelVersion: string,
  thresholds: DecisionThresholds,
  scored: readonly (ScoredCandidate & { vector: ComparisonVector })[],
  candidatesConsidered = scored.length,
): MatchDecision {
  const top = scored.slice(0, KEPT_CANDIDATES).map(({ vector: _vector, ...rest }) => rest);
  const base = { modelVersion, candidatesConsidered, top };
  const [best, runnerUp] = scored;
  if (!best) return { ...base, outcome: 'no-match', reason: 'no-candidate' };
  if (best.probability < thresholds.lower) return { ...base, outcome: 'no-match', reason: 'below-threshold' };
  const bestPublic = top[0]!;
  if (runnerUp && runnerUp.probability >= thresholds.lower && best.matchWeight - runnerUp.matchWeight < thresholds.marginBits) {
    return { ...base, outcome: 'review', reason: 'conflict', best: bestPublic };
  }
  if (best.probability < thresholds.upper) return { ...base, outcome: 'review', reason: 'uncertain', best: bestPublic };
  if (!identityConfirmed(best.vector)) return { ...base, outcome: 'review', reason: 'identity-unconfirmed', best: bestPublic };
  return { ...base, outcome: 'matched', member: { memberUuid: best.memberUuid, memberId: best.memberId }, best: bestPublic };
}

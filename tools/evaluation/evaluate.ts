import type { Db } from '../../src/db/database.js';
import { offeredPerson, parseMemberMatchRequest } from '../../src/fhir/member-match-request.js';
import type { DecisionThresholds, MatchDecision } from '../../src/matching/decision.js';
import type { ComparisonVector } from '../../src/matching/comparisons.js';
import { decideScored } from '../../src/matching/decide.js';
import { resolveMember, type ResolverOptions } from '../../src/matching/engine.js';
import { memberIndexCandidates } from '../../src/members/candidate-source.js';
import { loadCandidateMembers } from '../../src/members/member-index.js';
import { blockKind, memberBlockingKeys, queryBlockingKeys } from '../../src/matching/blocking.js';
import { normalizePerson } from '../../src/matching/normalize.js';
import { personFromProfile } from '../../src/matching/profile.js';
import type { NormalizedPerson } from '../../src/matching/record.js';
import { intersects } from '../../src/matching/compare.js';
import { forEachConcurrently, readQueries, type TruthRow } from './files.js';

/**
 * Runs a query set through exactly the API's path (parse → normalise → block → compare → score → decide)
 * and counts outcomes against the truth. Review counts as "found" only when the true member is among the
 * candidates shown to the reviewer.
 */

export interface EvaluationReport {
  queries: number;
  memberQueries: number;
  nonMemberQueries: number;
  unparseable: number;
  autoMatched: number;
  autoCorrect: number;
  falseMatches: { memberConfusedWithMember: number; nonMemberMatched: number };
  reviews: number;
  reviewsWithTrueMemberShown: number;
  noMatch: number;
  blockingFound: number;
  metrics: {
    autoPrecision: number;
    autoRecall: number;
    autoF1: number;
    recallAutoPlusReview: number;
    reviewRate: number;
    falseMatchRate: number;
    blockingRecall: number;
    decisionsPerSecond: number;
  };
  byHazard: Record<string, { n: number; matched: number; wrong: number; review: number; noMatch: number }>;
  /** Per blocking rule: member queries whose true member it reaches, and those it alone reaches. */
  blockingByRule: Record<string, { found: number; only: number }>;
  reviewReasons: Record<string, number>;
}

export interface QueryOutcome {
  queryId: string;
  truth: TruthRow | undefined;
  decision: MatchDecision | undefined;
  blocked: boolean;
  /**
   * Kinds of the blocking rules (and `card`) under which the query and its true member share a key, whether
   * or not resolution needed to search them: per-rule blocking recall. Absent for non-members.
   */
  blockKinds?: string[];
}

export async function evaluate(
  db: Db,
  options: ResolverOptions & { blockCap: number },
  queriesFile: string,
  truth: Map<string, TruthRow>,
  { concurrency = 8, onOutcome }: { concurrency?: number; onOutcome?: (outcome: QueryOutcome) => void } = {},
): Promise<EvaluationReport> {
  const outcomes: QueryOutcome[] = [];
  const started = process.hrtime.bigint();
  await forEachConcurrently(readQueries(queriesFile), concurrency, async (query) => {
    const expected = truth.get(query.id);
    let decision: MatchDecision | undefined;
    let blocked = false;
    let blockKinds: string[] | undefined;
    try {
      const request = parseMemberMatchRequest(query.parameters);
      const offered = offeredPerson(request);
      const normalized = normalizePerson(offered);
      const resolution = await resolveMember(memberIndexCandidates(db, options.blockCap), options, offered, normalized);
      decision = resolution.decision;
      blocked = !!expected?.memberId && resolution.candidateMemberIds.includes(expected.memberId);
      if (expected?.memberId) blockKinds = await sharedBlockKinds(db, normalized, expected.memberId);
    } catch (error) {
      if ((error as { status?: number }).status !== 400) throw error;
    }
    const outcome = { queryId: query.id, truth: expected, decision, blocked, ...(blockKinds ? { blockKinds } : {}) };
    outcomes.push(outcome);
    onOutcome?.(outcome);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return summarise(outcomes, seconds);
}

/**
 * The blocking-rule kinds under which a query and its true member share a key (`card` when the card's values
 * reach the member), computed from both sides' keys: what each rule would find, not what the two-pass search
 * happened to look at.
 */
async function sharedBlockKinds(db: Db, query: NormalizedPerson, memberId: string): Promise<string[]> {
  const row = await db.selectFrom('members').select('id').where('member_id', '=', memberId).executeTakeFirst();
  if (!row) return [];
  const [member] = await loadCandidateMembers(db, [row.id]);
  if (!member) return [];
  const queryKeys = new Set(queryBlockingKeys(query));
  const person = personFromProfile(member.profile, member.fields);
  const kinds = new Set(memberBlockingKeys(person).filter((k) => queryKeys.has(k)).map(blockKind));
  // The member's identifiers (member, subscriber and coverage ids) arrive normalised with the member, as the card's do.
  if (intersects(query.identifiers, person.identifiers)) kinds.add('card');
  return [...kinds].sort();
}

export function summarise(outcomes: readonly QueryOutcome[], seconds: number): EvaluationReport {
  const report: EvaluationReport = {
    queries: outcomes.length,
    memberQueries: 0,
    nonMemberQueries: 0,
    unparseable: 0,
    autoMatched: 0,
    autoCorrect: 0,
    falseMatches: { memberConfusedWithMember: 0, nonMemberMatched: 0 },
    reviews: 0,
    reviewsWithTrueMemberShown: 0,
    noMatch: 0,
    blockingFound: 0,
    metrics: { autoPrecision: 0, autoRecall: 0, autoF1: 0, recallAutoPlusReview: 0, reviewRate: 0, falseMatchRate: 0, blockingRecall: 0, decisionsPerSecond: 0 },
    byHazard: {},
    reviewReasons: {},
    blockingByRule: {},
  };
  for (const { truth, decision, blocked, blockKinds } of outcomes) {
    const expected = truth?.memberId;
    if (expected) report.memberQueries++;
    else report.nonMemberQueries++;
    for (const kind of blockKinds ?? []) {
      const rule = (report.blockingByRule[kind] ??= { found: 0, only: 0 });
      rule.found++;
      if (blockKinds!.length === 1) rule.only++;
    }
    if (blocked) report.blockingFound++;
    // A query counts once under each of its hazard tags (`nickname+moved` → nickname, moved).
    const tags = (truth?.hazard || (expected ? 'exact' : 'non-member')).split('+');
    const rows = tags.map((tag) => (report.byHazard[tag] ??= { n: 0, matched: 0, wrong: 0, review: 0, noMatch: 0 }));
    const count = (column: 'n' | 'matched' | 'wrong' | 'review' | 'noMatch') => rows.forEach((row) => row[column]++);
    count('n');
    if (!decision) {
      report.unparseable++;
      count('noMatch');
      continue;
    }
    if (decision.outcome === 'matched') {
      report.autoMatched++;
      if (decision.member.memberId === expected) {
        report.autoCorrect++;
        count('matched');
      } else {
        count('wrong');
        if (expected) report.falseMatches.memberConfusedWithMember++;
        else report.falseMatches.nonMemberMatched++;
      }
    } else if (decision.outcome === 'review') {
      report.reviews++;
      count('review');
      report.reviewReasons[decision.reason] = (report.reviewReasons[decision.reason] ?? 0) + 1;
      if (expected && decision.top.some((c) => c.memberId === expected)) report.reviewsWithTrueMemberShown++;
    } else {
      report.noMatch++;
      count('noMatch');
    }
  }
  const m = report.metrics;
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  m.autoPrecision = ratio(report.autoCorrect, report.autoMatched);
  m.autoRecall = ratio(report.autoCorrect, report.memberQueries);
  m.autoF1 = ratio(2 * m.autoPrecision * m.autoRecall, m.autoPrecision + m.autoRecall);
  m.recallAutoPlusReview = ratio(report.autoCorrect + report.reviewsWithTrueMemberShown, report.memberQueries);
  m.reviewRate = ratio(report.reviews, report.queries);
  m.falseMatchRate = ratio(report.falseMatches.memberConfusedWithMember + report.falseMatches.nonMemberMatched, report.queries);
  m.blockingRecall = ratio(report.blockingFound, report.memberQueries);
  m.decisionsPerSecond = ratio(report.queries, seconds);
  return report;
}

export function formatReport(report: EvaluationReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const m = report.metrics;
  const lines = [
    `queries                 ${report.queries} (${report.memberQueries} members, ${report.nonMemberQueries} non-members, ${report.unparseable} refused as malformed)`,
    `auto-match precision    ${pct(m.autoPrecision)}  (${report.autoCorrect} of ${report.autoMatched})`,
    `auto-match recall       ${pct(m.autoRecall)}`,
    `auto-match F1           ${m.autoF1.toFixed(4)}`,
    `recall auto + review    ${pct(m.recallAutoPlusReview)}`,
    `review rate             ${pct(m.reviewRate)}  (${report.reviews}: ${Object.entries(report.reviewReasons).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`,
    `false matches           ${report.falseMatches.memberConfusedWithMember + report.falseMatches.nonMemberMatched} = ${pct(m.falseMatchRate)} of queries (member confused with member ${report.falseMatches.memberConfusedWithMember}, non-member matched ${report.falseMatches.nonMemberMatched})`,
    `blocking recall         ${pct(m.blockingRecall)}`,
    `decisions per second    ${m.decisionsPerSecond.toFixed(1)}`,
    '',
    'blocking rule   recall    only this rule',
    ...Object.entries(report.blockingByRule)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, r]) => `${kind.padEnd(15)} ${pct(ratio(r.found, report.memberQueries)).padStart(8)}  ${String(r.only).padStart(6)}`),
    '',
    'hazard                               n  matched  wrong  review  no-match',
    ...Object.entries(report.byHazard)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([h, c]) => `${h.padEnd(34)} ${String(c.n).padStart(4)} ${String(c.matched).padStart(8)} ${String(c.wrong).padStart(6)} ${String(c.review).padStart(7)} ${String(c.noMatch).padStart(9)}`),
  ];
  return lines.join('\n');
}

/**
 * Re-decides recorded outcomes under other thresholds (the candidates and their per-field levels do not
 * depend on thresholds), so one evaluation run shows the whole precision / review-rate trade-off. Used to
 * choose the configured defaults; see README "Accuracy".
 */
export function sweepThresholds(outcomes: readonly QueryOutcome[], grid: readonly DecisionThresholds[]): { thresholds: DecisionThresholds; report: EvaluationReport }[] {
  return grid.map((thresholds) => ({
    thresholds,
    report: summarise(
      outcomes.map((o) => {
        if (!o.decision) return o;
        const scored = o.decision.top.map((c) => ({ ...c, vector: Object.fromEntries(c.explanation.map((e) => [e.field, e.level])) as unknown as ComparisonVector }));
        // Only the top three candidates were kept; the fourth and later never decide anything.
        const decision = decideScored(o.decision.modelVersion, thresholds, scored);
        return { ...o, decision: { ...decision, candidatesConsidered: o.decision.candidatesConsidered } };
      }),
      0,
    ),
  }));
}

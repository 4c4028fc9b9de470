import { InvalidArgumentError, type Command } from 'commander';
import { apiCall } from '../http.js';
import { printTable } from '../output.js';
import { choiceOption, intInRange, positiveInt, STAFF_TOKEN_HINT, staffApi, staffApiOptions } from './common.js';

/**
 * `member-match review …`: the review queue from the command line, through the reviewer API (/review) with a
 * staff token, so the same leases, ETags, four-eyes rule, policy and audit trail apply as in the workbench.
 * Changes send the case version as If-Match: the one given with --case-version, else the one just read (the CLI
 * shows the case before it changes it, as a reviewer would read it).
 */

/** A case as GET /review/cases answers it (the columns listed). */
interface CaseSummaryJson {
  id: string;
  status: string;
  reason: string;
  partnerClientId: string;
  ageSeconds: number;
  slaDueAt: string | null;
  highRisk: boolean;
  leaseOwner: string | null;
  version: number;
}

const CASE_STATUSES = ['pending', 'claimed', 'awaiting-confirmation', 'decided'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface ApiOptions {
  base?: string;
  token?: string;
}

const caseId = (text: string) => {
  if (!UUID.test(text)) throw new InvalidArgumentError('expected a case id (a UUID, as `review list` shows)');
  return text.toLowerCase();
};

function call(options: ApiOptions, method: string, path: string, extra: { body?: unknown; headers?: Record<string, string>; accept?: number[] } = {}) {
  const { base, token } = staffApi(options);
  return apiCall(base, token, method, `/review${path}`, { ...extra, tokenHint: STAFF_TOKEN_HINT });
}

/** If-Match for a change: the version given, else the case's current ETag. */
async function ifMatch(options: ApiOptions & { caseVersion?: number }, id: string): Promise<string> {
  if (options.caseVersion !== undefined) return `"${options.caseVersion}"`;
  const current = await call(options, 'GET', `/cases/${id}`);
  return current.headers.get('etag') ?? `"${current.body.version}"`;
}

const print = (body: unknown) => console.log(JSON.stringify(body, null, 2));

export function registerReviewCommands(program: Command): void {
  const review = program.command('review').description('the human review queue, through the reviewer API (a staff token: reviewer or supervisor)');

  staffApiOptions(
    review
      .command('list')
      .description('review cases, most urgent first')
      .addOption(choiceOption('--status <status>', 'only cases in this state', CASE_STATUSES))
      .option('--reason <reason>', 'only cases opened for this reason (e.g. conflict)')
      .option('--partner <client-id>', "only this partner client's cases")
      .option('--older-than <seconds>', 'only cases older than this', positiveInt)
      .option('--limit <n>', 'how many (1-100)', intInRange(1, 100), 20)
      .option('--offset <n>', 'skip this many (the next page)', positiveInt, 0)
      .option('--json', 'print the cases as JSON'),
  ).action(async (options: ApiOptions & { status?: string; reason?: string; partner?: string; olderThan?: number; limit: number; offset: number; json?: boolean }) => {
    const query = new URLSearchParams({ limit: String(options.limit), offset: String(options.offset) });
    if (options.status) query.set('status', options.status);
    if (options.reason) query.set('reason', options.reason);
    if (options.partner) query.set('partner', options.partner);
    if (options.olderThan !== undefined) query.set('olderThan', String(options.olderThan));
    const { body } = await call(options, 'GET', `/cases?${query}`);
    if (options.json) return print(body);
    printTable(
      ['ID', 'STATUS', 'REASON', 'PARTNER', 'AGE(S)', 'SLA DUE', 'HIGH RISK', 'LEASE OWNER', 'VERSION'],
      (body as CaseSummaryJson[]).map((c) => [c.id, c.status, c.reason, c.partnerClientId, c.ageSeconds, c.slaDueAt, c.highRisk ? 'yes' : 'no', c.leaseOwner, c.version]),
    );
  });

  staffApiOptions(review.command('show').argument('<case-id>', 'the case', caseId).description('a case: the request beside each candidate, with per-field agreement and weights (contact details masked)')).action(
    async (id: string, options: ApiOptions) => print((await call(options, 'GET', `/cases/${id}`)).body),
  );

  staffApiOptions(review.command('claim').description('claim the next case (an exclusive lease) and show it')).action(async (options: ApiOptions) => {
    const claimed = await call(options, 'POST', '/cases/claim', { accept: [200, 204] });
    if (claimed.status === 204) {
      console.error('the queue is empty: no case to claim');
      return;
    }
    print(claimed.body);
  });

  staffApiOptions(
    review
      .command('decide')
      .argument('<case-id>', 'a case you have claimed', caseId)
      .description('decide a claimed case: match (naming the member) or no-match')
      .addOption(choiceOption('--decision <decision>', 'the decision', ['match', 'no-match']).makeOptionMandatory())
      .option('--member <member-ref>', 'for match: the candidate chosen (its memberRef, as `review show` lists)')
      .requiredOption('--reason <text>', 'why (kept in the audit trail)')
      .option('--case-version <n>', 'the case version you decided on, sent as If-Match (default: the current one)', positiveInt),
  ).action(async (id: string, options: ApiOptions & { decision: 'match' | 'no-match'; member?: string; reason: string; caseVersion?: number }) => {
    if ((options.decision === 'match') !== (options.member !== undefined)) throw new InvalidArgumentError('--member is required with --decision match, and only then');
    if (options.member !== undefined && !UUID.test(options.member)) throw new InvalidArgumentError('--member is a candidate memberRef (a UUID)');
    const body = { decision: options.decision, reason: options.reason, ...(options.member ? { memberRef: options.member } : {}) };
    print((await call(options, 'POST', `/cases/${id}/decision`, { body, headers: { 'if-match': await ifMatch(options, id) } })).body);
  });

  staffApiOptions(
    review
      .command('confirm')
      .argument('<case-id>', 'a high-risk case awaiting confirmation', caseId)
      .description("four eyes: confirm (or --reject) another reviewer's decision on a high-risk case")
      .option('--reject', 'reject the proposed decision instead of confirming it')
      .requiredOption('--reason <text>', 'why (kept in the audit trail)')
      .option('--case-version <n>', 'the case version you confirmed, sent as If-Match (default: the current one)', positiveInt),
  ).action(async (id: string, options: ApiOptions & { reject?: boolean; reason: string; caseVersion?: number }) => {
    const body = { agree: !options.reject, reason: options.reason };
    print((await call(options, 'POST', `/cases/${id}/confirm`, { body, headers: { 'if-match': await ifMatch(options, id) } })).body);
  });

  staffApiOptions(review.command('release').argument('<case-id>', 'a case you have claimed', caseId).description('give a claimed case back to the queue')).action(
    async (id: string, options: ApiOptions) => print((await call(options, 'POST', `/cases/${id}/lease`, { body: { action: 'release' } })).body),
  );
}

/**
 * The review API (/review/cases…, src/http/routes/review.ts) as the workbench calls it. The reviewer never
 * handles an ETag: every answer that carries one is remembered per case, and every change sends it back in
 * If-Match. A 412 means someone changed the case meanwhile; the caller reloads it and says so.
 */

export type CaseStatus = 'pending' | 'claimed' | 'awaiting-confirmation' | 'decided';

export interface CaseSummary {
  id: string;
  status: CaseStatus;
  reason: string;
  partnerClientId: string | null;
  priority: number;
  createdAt: string;
  ageSeconds: number;
  slaDueAt: string;
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
  decision: 'match' | 'no-match' | null;
  decidedBy: string | null;
  decidedMemberRef?: string | null;
  decisionReason?: string | null;
  highRisk: boolean;
  confirmedBy: string | null;
  version: number;
}

/** Demographics as the API shows them: contact details already masked by the server. */
export interface Person {
  given?: string;
  middle?: string;
  family?: string;
  suffix?: string;
  birthDate?: string;
  sex?: string;
  city?: string;
  state?: string;
  postalCode?: string;
  addressLine?: string;
  phone?: string;
  email?: string;
}

export interface FieldExplanation {
  field: string;
  level: string;
  weight: number;
  discounted?: true;
}

export interface Candidate {
  memberRef: string;
  probability: number;
  matchWeight: number;
  cardHit: boolean;
  explanation: FieldExplanation[];
  member: Person | null;
}

export interface CaseView extends CaseSummary {
  modelVersion: string;
  bestProbability: number | null;
  request: Person;
  candidates: Candidate[];
}

export interface Stats {
  byStatus: Record<string, number>;
  openByReason: Record<string, number>;
  overdue: number;
  oldestOpenAgeSeconds: number | null;
}

export interface CaseFilter {
  status?: CaseStatus | '';
  reason?: string;
  partner?: string;
  olderThan?: number;
}

export type LinkStatus = 'active' | 'revoked' | 'member-opted-out' | 'consent-expired' | 'consent-not-yet-valid';

/** A partner's member link as GET /admin/links answers it: references and the consent, no demographics. */
export interface Link {
  linkId: string;
  memberRef: string;
  memberId: string;
  partnerClientId: string;
  partnerOrganization: string;
  status: LinkStatus;
  createdAt: string;
  updatedAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  revokeReason: string | null;
  consent: { id: string; policyUri: string; periodStart: string; periodEnd: string; sourceReference: string | null };
}

export interface LinkFilter {
  /** The partner organisation's identifier, system|value. */
  partner?: string;
  /** The partner's client id. */
  client?: string;
  status?: LinkStatus | '';
  limit: number;
  offset: number;
}

export interface ApiError extends Error {
  status: number;
  /** The OperationOutcome's reason code (`stale-version`, `four-eyes`, …). */
  code: string;
}

function apiError(status: number, code: string, message: string): ApiError {
  return Object.assign(new Error(message), { status, code });
}

export const isApiError = (error: unknown): error is ApiError => error instanceof Error && typeof (error as ApiError).status === 'number';

/** An error as the page shows it: the OperationOutcome's diagnostics, with the status and reason code. */
export function failure(error: unknown): string {
  if (isApiError(error)) return `${error.message} (${error.status} ${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

export interface Api {
  list(filter: CaseFilter): Promise<CaseSummary[]>;
  stats(): Promise<Stats>;
  claimNext(): Promise<CaseView | undefined>;
  view(id: string): Promise<CaseView>;
  lease(id: string, action: 'extend' | 'release'): Promise<CaseSummary>;
  decide(id: string, body: { decision: 'match' | 'no-match'; memberRef?: string; reason: string }): Promise<CaseSummary>;
  confirm(id: string, body: { agree: boolean; reason: string }): Promise<CaseSummary>;
  reopen(id: string, body: { reason: string }): Promise<CaseSummary>;
  /** Link management (/admin/links…): staff list, a supervisor revokes. */
  links(filter: LinkFilter): Promise<Link[]>;
  revokeLink(id: string, body: { reason: string }): Promise<Link>;
}

/** `token` answers the current bearer token; `onUnauthorized` runs on a 401 (the session expired or was refused). */
export function createApi(token: () => string | undefined, onUnauthorized: () => void): Api {
  const etags = new Map<string, string>();

  async function call<T>(method: string, path: string, options: { body?: unknown; caseId?: string } = {}): Promise<T | undefined> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const bearer = token();
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.caseId && method !== 'GET') {
      const etag = etags.get(options.caseId);
      if (etag) headers['if-match'] = etag;
    }
    // Paths are the review API's (/cases…), except link management's, which the caller gives in full (/admin/…).
    const response = await fetch(path.startsWith('/admin/') ? path : `/review${path}`, { method, headers, body: options.body === undefined ? null : JSON.stringify(options.body) });
    if (response.status === 204) return undefined;
    const text = await response.text();
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (!response.ok) {
      const issue = (body as { issue?: { details?: { coding?: { code?: string }[] }; diagnostics?: string }[] } | undefined)?.issue?.[0];
      if (response.status === 401) onUnauthorized();
      throw apiError(response.status, issue?.details?.coding?.[0]?.code ?? 'error', issue?.diagnostics ?? `the server answered ${response.status}`);
    }
    const etag = response.headers.get('etag');
    const id = options.caseId ?? (body as { id?: string } | undefined)?.id;
    if (etag && id) etags.set(id, etag);
    return body as T;
  }

  const required = async <T>(pending: Promise<T | undefined>): Promise<T> => {
    const value = await pending;
    if (value === undefined) throw apiError(204, 'empty', 'the server answered without a body');
    return value;
  };

  return {
    list(filter) {
      const query = new URLSearchParams({ limit: '100' });
      if (filter.status) query.set('status', filter.status);
      if (filter.reason) query.set('reason', filter.reason);
      if (filter.partner) query.set('partner', filter.partner);
      if (filter.olderThan) query.set('olderThan', String(filter.olderThan));
      return required(call<CaseSummary[]>('GET', `/cases?${query.toString()}`));
    },
    stats: () => required(call<Stats>('GET', '/stats')),
    claimNext: () => call<CaseView>('POST', '/cases/claim'),
    view: (id) => required(call<CaseView>('GET', `/cases/${encodeURIComponent(id)}`, { caseId: id })),
    lease: (id, action) => required(call<CaseSummary>('POST', `/cases/${encodeURIComponent(id)}/lease`, { caseId: id, body: { action } })),
    decide: (id, body) => required(call<CaseSummary>('POST', `/cases/${encodeURIComponent(id)}/decision`, { caseId: id, body })),
    confirm: (id, body) => required(call<CaseSummary>('POST', `/cases/${encodeURIComponent(id)}/confirm`, { caseId: id, body })),
    reopen: (id, body) => required(call<CaseSummary>('POST', `/cases/${encodeURIComponent(id)}/reopen`, { caseId: id, body })),
    links(filter) {
      // Organisation and client identifiers only: no member identifier ever goes into a query string.
      const query = new URLSearchParams({ limit: String(filter.limit), offset: String(filter.offset) });
      if (filter.partner) query.set('partner', filter.partner);
      if (filter.client) query.set('client', filter.client);
      if (filter.status) query.set('status', filter.status);
      return required(call<Link[]>('GET', `/admin/links?${query.toString()}`));
    },
    revokeLink: (id, body) => required(call<Link>('POST', `/admin/links/${encodeURIComponent(id)}/revoke`, { body })),
  };
}

import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { createApi, failure, isApiError, type Api, type CaseFilter, type CaseStatus, type CaseSummary, type CaseView, type Person, type Stats } from './api.js';
import { completeSignIn, currentSession, loadSettings, signOut, startSignIn, type Session, type Settings } from './auth.js';
import { html } from './html.js';
import { canListLinks, LinksView } from './links.js';
import { Waterfall } from './waterfall.js';
import { bits } from './weights.js';

/**
 * The reviewer workbench (docs/workbench.md): the exception queue, a case side by side with its candidates,
 * and the decision, confirmation (four eyes) and reopening forms, over the review API. The page's address
 * never changes beyond /review/: which case is open is state, not URL, so no identifier reaches the history,
 * a bookmark or a Referer.
 */

type Notice = { text: string; kind: 'info' | 'error' };
type Notify = (text: string, kind?: Notice['kind']) => void;

const REASONS = ['uncertain', 'conflict', 'identity-unconfirmed'];
const STATUS_LABEL: Record<CaseStatus, string> = {
  pending: 'Pending',
  claimed: 'Claimed',
  'awaiting-confirmation': 'Awaiting confirmation',
  decided: 'Decided',
};

/** The side-by-side rows: a demographic field, and the model field whose comparison judges it. */
const FIELDS: { key: keyof Person; label: string; model: string; masked?: true }[] = [
  { key: 'given', label: 'Given name', model: 'given' },
  { key: 'middle', label: 'Middle name', model: 'given' },
  { key: 'family', label: 'Family name', model: 'family' },
  { key: 'suffix', label: 'Suffix', model: 'suffix' },
  { key: 'birthDate', label: 'Birth date', model: 'birthDate' },
  { key: 'sex', label: 'Sex', model: 'sex' },
  { key: 'addressLine', label: 'Street (masked)', model: 'address', masked: true },
  { key: 'city', label: 'City', model: 'address' },
  { key: 'state', label: 'State', model: 'address' },
  { key: 'postalCode', label: 'ZIP', model: 'address' },
  { key: 'phone', label: 'Phone (masked)', model: 'phone', masked: true },
  { key: 'email', label: 'E-mail (masked)', model: 'email', masked: true },
];

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(Math.abs(seconds)));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

function slaText(slaDueAt: string, now: number): { text: string; overdue: boolean } {
  const left = (new Date(slaDueAt).getTime() - now) / 1000;
  return left < 0 ? { text: `overdue by ${duration(left)}`, overdue: true } : { text: `due in ${duration(left)}`, overdue: false };
}

const shortId = (id: string) => id.slice(0, 8);
function percent(p: number | null | undefined): string {
  if (p === null || p === undefined) return '—';
  const text = (p * 100).toFixed(p > 0.999 ? 4 : 2);
  // Near certainty the weight in bits says more; never print a rounded 100 % for a case that is in review.
  return text.startsWith('100') && p < 1 ? '≈ 100 %' : `${text} %`;
}

/** Keys typed into a form are text, not shortcuts. */
function typing(event: KeyboardEvent): boolean {
  const target = event.target as HTMLElement | null;
  return !!target && (['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName) || target.isContentEditable);
}

function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

// ---------------------------------------------------------------------------------------------------------------
// Sign-in

function SignIn({ settings, notice }: { settings: Settings | undefined; notice: Notice | undefined }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const issuerHost = settings?.issuer ? new URL(settings.issuer).host : undefined;
  async function go() {
    if (!settings) return;
    setBusy(true);
    try {
      await startSignIn(settings);
    } catch (e) {
      setError(failure(e));
      setBusy(false);
    }
  }
  return html`
    <main id="main" class="sign-in" tabindex="-1">
      <h1>Review workbench</h1>
      <p>Decide the member matches the matching engine could not: staff only.</p>
      ${notice && html`<p class=${`notice ${notice.kind}`} role=${notice.kind === 'error' ? 'alert' : 'status'}>${notice.text}</p>`}
      ${error && html`<p class="notice error" role="alert">${error}</p>`}
      ${settings && !settings.issuer && html`<p class="notice error" role="alert">No identity provider is configured: set OIDC_ISSUER, or DEV_MODE=true for the development IdP.</p>`}
      <button id="sign-in" class="primary" type="button" onClick=${go} disabled=${busy || !settings?.issuer}>
        ${busy ? 'Signing in…' : `Sign in${issuerHost ? ` with ${issuerHost}` : ''}`}
      </button>
    </main>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Queue

interface QueueFilter extends CaseFilter {
  /** Client-side: the API has no such filters. */
  sla: 'any' | 'overdue' | 'due-4h';
  highRiskOnly: boolean;
  openOnly: boolean;
}

const DEFAULT_FILTER: QueueFilter = { status: '', reason: '', partner: '', olderThan: 0, sla: 'any', highRiskOnly: false, openOnly: true };

function StatsPanel({ stats }: { stats: Stats }) {
  const reasons = Object.entries(stats.openByReason);
  const most = Math.max(1, ...reasons.map(([, n]) => n));
  return html`
    <section class="panel stats" aria-labelledby="stats-heading">
      <h2 id="stats-heading">Queue statistics</h2>
      <dl class="counts">
        ${(['pending', 'claimed', 'awaiting-confirmation', 'decided'] as CaseStatus[]).map(
          (s) => html`<div><dt>${STATUS_LABEL[s]}</dt><dd data-stat=${s}>${stats.byStatus[s] ?? 0}</dd></div>`,
        )}
        <div><dt>Overdue</dt><dd class=${stats.overdue > 0 ? 'overdue' : ''} data-stat="overdue">${stats.overdue}</dd></div>
        <div><dt>Oldest open</dt><dd>${stats.oldestOpenAgeSeconds === null ? '—' : duration(stats.oldestOpenAgeSeconds)}</dd></div>
      </dl>
      ${reasons.length > 0 &&
      html`<figure class="reason-bars">
        <figcaption>Open cases by reason</figcaption>
        <svg viewBox=${`0 0 400 ${reasons.length * 24}`} role="img" aria-label=${reasons.map(([r, n]) => `${r}: ${n}`).join(', ')}>
          ${reasons.map(
            ([reason, n], i) => html`<g>
              <text x="150" y=${i * 24 + 16} text-anchor="end">${reason}</text>
              <rect x="158" y=${i * 24 + 4} height="16" width=${(n / most) * 200} rx="2" />
              <text x=${164 + (n / most) * 200} y=${i * 24 + 16}>${n}</text>
            </g>`,
          )}
        </svg>
      </figure>`}
    </section>`;
}

function Queue(props: { api: Api; session: Session; notify: Notify; onOpen: (view: CaseView) => void; claimRef: { current: () => void } }) {
  const { api, session, notify, onOpen } = props;
  const [filter, setFilter] = useState<QueueFilter>(DEFAULT_FILTER);
  const [cases, setCases] = useState<CaseSummary[] | undefined>();
  const [stats, setStats] = useState<Stats>();
  const [busy, setBusy] = useState(false);
  const supervisor = session.roles.includes('supervisor');
  const now = useNow(30_000);
  const heading = useRef<HTMLHeadingElement>(null);

  const refresh = useCallback(async () => {
    try {
      const listed = await api.list({ status: filter.status, reason: filter.reason, partner: filter.partner?.trim(), olderThan: filter.olderThan });
      setCases(listed);
      if (supervisor) setStats(await api.stats());
    } catch (e) {
      notify(`Could not load the queue: ${failure(e)}`, 'error');
    }
  }, [api, filter.status, filter.reason, filter.partner, filter.olderThan, supervisor, notify]);

  // Other reviewers change the queue too: it refreshes itself every half minute while shown.
  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), 30_000);
    return () => clearInterval(timer);
  }, [refresh]);
  useEffect(() => heading.current?.focus(), []);

  const claimNext = useCallback(async () => {
    setBusy(true);
    try {
      const claimed = await api.claimNext();
      if (!claimed) {
        notify('The queue is empty: no case to claim.');
        await refresh();
      } else {
        notify(`Claimed case ${shortId(claimed.id)}.`);
        onOpen(claimed);
      }
    } catch (e) {
      notify(`Could not claim: ${failure(e)}`, 'error');
    } finally {
      setBusy(false);
    }
  }, [api, notify, onOpen, refresh]);
  props.claimRef.current = () => void claimNext();

  async function open(id: string) {
    try {
      onOpen(await api.view(id));
    } catch (e) {
      notify(`Could not open the case: ${failure(e)}`, 'error');
    }
  }

  const shown = (cases ?? []).filter((c) => {
    if (filter.openOnly && !filter.status && c.status === 'decided') return false;
    if (filter.highRiskOnly && !c.highRisk) return false;
    const left = new Date(c.slaDueAt).getTime() - now;
    if (filter.sla === 'overdue' && left >= 0) return false;
    if (filter.sla === 'due-4h' && left >= 4 * 3600_000) return false;
    return true;
  });
  const set = (change: Partial<QueueFilter>) => setFilter((f) => ({ ...f, ...change }));
  // The partners of the cases listed, as suggestions for the partner filter.
  const partners = [...new Set((cases ?? []).map((c) => c.partnerClientId).filter((p): p is string => !!p))].sort();

  return html`
    <main id="main" class="queue">
      <div class="toolbar">
        <h1 id="queue-heading" ref=${heading} tabindex="-1">Review queue</h1>
        <button id="claim-next" class="primary" type="button" onClick=${claimNext} disabled=${busy} aria-keyshortcuts="n">
          Claim next case <kbd aria-hidden="true">n</kbd>
        </button>
      </div>
      ${supervisor && stats && html`<${StatsPanel} stats=${stats} />`}
      <form class="panel filters" aria-labelledby="filters-heading" onSubmit=${(e: Event) => (e.preventDefault(), void refresh())}>
        <h2 id="filters-heading">Filters</h2>
        <div class="filter-row">
          <label>Status
            <select id="filter-status" value=${filter.status} onChange=${(e: Event) => set({ status: (e.target as HTMLSelectElement).value as CaseStatus | '' })}>
              <option value="">Open (not decided)</option>
              ${(Object.keys(STATUS_LABEL) as CaseStatus[]).map((s) => html`<option value=${s}>${STATUS_LABEL[s]}</option>`)}
            </select>
          </label>
          <label>Reason
            <select id="filter-reason" value=${filter.reason} onChange=${(e: Event) => set({ reason: (e.target as HTMLSelectElement).value })}>
              <option value="">Any reason</option>
              ${REASONS.map((r) => html`<option value=${r}>${r}</option>`)}
            </select>
          </label>
          <label>Partner client
            <input id="filter-partner" type="search" value=${filter.partner} maxLength="128" placeholder="client id" list="partners"
              onChange=${(e: Event) => set({ partner: (e.target as HTMLInputElement).value })} />
          </label>
          <datalist id="partners">${partners.map((p) => html`<option value=${p} />`)}</datalist>
          <label>Age
            <select id="filter-age" value=${String(filter.olderThan ?? 0)} onChange=${(e: Event) => set({ olderThan: Number((e.target as HTMLSelectElement).value) })}>
              <option value="0">Any age</option>
              <option value="3600">Older than 1 hour</option>
              <option value="14400">Older than 4 hours</option>
              <option value="86400">Older than 1 day</option>
            </select>
          </label>
          <label>SLA
            <select id="filter-sla" value=${filter.sla} onChange=${(e: Event) => set({ sla: (e.target as HTMLSelectElement).value as QueueFilter['sla'] })}>
              <option value="any">Any</option>
              <option value="overdue">Overdue</option>
              <option value="due-4h">Due within 4 hours</option>
            </select>
          </label>
          <label class="check"><input id="filter-high-risk" type="checkbox" checked=${filter.highRiskOnly}
            onChange=${(e: Event) => set({ highRiskOnly: (e.target as HTMLInputElement).checked })} /> High risk only</label>
          <button type="submit">Refresh</button>
        </div>
      </form>
      <section aria-labelledby="cases-heading">
        <h2 id="cases-heading">Cases <span class="count">(${cases === undefined ? 'loading' : shown.length})</span></h2>
        ${cases !== undefined && shown.length === 0
          ? html`<p class="empty">No case matches these filters.</p>`
          : html`<table class="cases">
              <caption class="visually-hidden">Review cases, most urgent first</caption>
              <thead><tr><th scope="col">Case</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Partner</th>
                <th scope="col">Age</th><th scope="col">SLA</th><th scope="col">Risk</th><th scope="col">With</th></tr></thead>
              <tbody>
                ${shown.map((c) => {
                  const sla = slaText(c.slaDueAt, now);
                  return html`<tr key=${c.id} data-case=${c.id} data-status=${c.status}>
                    <td><button type="button" class="link" onClick=${() => open(c.id)} aria-label=${`Open case ${shortId(c.id)}`}>${shortId(c.id)}</button></td>
                    <td>${STATUS_LABEL[c.status]}</td>
                    <td>${c.reason}</td>
                    <td>${c.partnerClientId ?? 'own batch'}</td>
                    <td>${duration(c.ageSeconds)}</td>
                    <td class=${sla.overdue ? 'overdue' : ''}>${sla.text}</td>
                    <td>${c.highRisk ? html`<span class="badge risk">High risk</span>` : 'normal'}</td>
                    <td>${c.status === 'awaiting-confirmation' ? `proposed by ${c.decidedBy ?? '?'}` : c.leaseOwner ?? '—'}</td>
                  </tr>`;
                })}
              </tbody>
            </table>`}
      </section>
    </main>`;
}

// ---------------------------------------------------------------------------------------------------------------
// A case

function LeaseTimer({ expiresAt }: { expiresAt: string }) {
  const now = useNow();
  const left = Math.round((new Date(expiresAt).getTime() - now) / 1000);
  const text = left <= 0 ? 'expired' : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left`;
  return html`<span id="lease-timer" role="timer" aria-live="off" class=${left <= 60 ? 'lease warn' : 'lease'}>Lease ${text}</span>`;
}

function Agreement({ level, weight, discounted }: { level: string; weight: number; discounted?: boolean }) {
  const kind = level === 'missing' || discounted || weight === 0 ? 'neutral' : weight > 0 ? 'agree' : 'disagree';
  const symbol = kind === 'agree' ? '✓' : kind === 'disagree' ? '✗' : '–';
  return html`<span class=${`level ${kind}`}><span aria-hidden="true">${symbol} </span>${level}${discounted ? ' (not counted)' : ''}
    <span class="weight">${level === 'missing' ? '' : `${bits(discounted ? 0 : weight)} bits`}</span></span>`;
}

function SideBySide({ view }: { view: CaseView }) {
  const levels = view.candidates.map((c) => new Map(c.explanation.map((e) => [e.field, e])));
  // A field's agreement shows on the first of its rows only (given on Given name, address on Street).
  const firstRowOf = new Map<string, keyof Person>();
  for (const f of FIELDS) if (!firstRowOf.has(f.model)) firstRowOf.set(f.model, f.key);
  const identifierRows = view.candidates.some((c) => c.explanation.some((e) => e.field === 'identifier'));
  return html`
    <table class="side-by-side">
      <caption>The request beside each candidate, with each field's agreement level and weight</caption>
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Request</th>
          ${view.candidates.map(
            (c, i) => html`<th scope="col">Candidate ${i + 1}<br /><span class="sub">${percent(c.probability)} · ${c.matchWeight.toFixed(1)} bits${c.cardHit ? ' · card hit' : ''}</span></th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${FIELDS.map(
          (f) => html`<tr>
            <th scope="row">${f.label}</th>
            <td class=${f.masked ? 'masked' : ''}>${view.request[f.key] ?? html`<span class="none">—</span>`}</td>
            ${view.candidates.map((c, i) => {
              const e = firstRowOf.get(f.model) === f.key ? levels[i]!.get(f.model) : undefined;
              return html`<td class=${f.masked ? 'masked' : ''}>
                <span class="value">${c.member?.[f.key] ?? html`<span class="none">—</span>`}</span>
                ${e && html`<${Agreement} level=${e.level} weight=${e.weight} discounted=${e.discounted} />`}
              </td>`;
            })}
          </tr>`,
        )}
        ${identifierRows &&
        html`<tr>
          <th scope="row">Card identifier</th>
          <td class="none">(not shown)</td>
          ${view.candidates.map((_c, i) => {
            const e = levels[i]!.get('identifier');
            return html`<td>${e ? html`<${Agreement} level=${e.level} weight=${e.weight} discounted=${e.discounted} />` : '—'}</td>`;
          })}
        </tr>`}
      </tbody>
    </table>`;
}

interface CaseProps {
  api: Api;
  session: Session;
  view: CaseView;
  notify: Notify;
  onChange: (view: CaseView) => void;
  onClose: () => void;
}

function CasePanel({ api, session, view, notify, onChange, onClose }: CaseProps) {
  const [choice, setChoice] = useState<string>('');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const reasonBox = useRef<HTMLTextAreaElement>(null);
  const now = useNow(30_000);
  const mine = view.status === 'claimed' && view.leaseOwner === session.user && !!view.leaseExpiresAt && new Date(view.leaseExpiresAt).getTime() > Date.now();
  const canConfirm = view.status === 'awaiting-confirmation' && view.decidedBy !== session.user;
  const canReopen = view.status === 'decided' && session.roles.includes('supervisor');
  const sla = slaText(view.slaDueAt, now);

  useEffect(() => heading.current?.focus(), [view.id]);
  useEffect(() => {
    setChoice('');
    setReason('');
  }, [view.id, view.status]);

  /** Runs a change; on 412 (someone else changed the case) reloads it and says so. */
  async function act(label: string, change: () => Promise<unknown>, after: 'reload' | 'close') {
    setBusy(true);
    try {
      await change();
      notify(label);
      if (after === 'close') onClose();
      else onChange(await api.view(view.id));
    } catch (e) {
      if (isApiError(e) && e.status === 412) {
        notify('The case changed since you opened it (another reviewer, or the lease ran out): it has been reloaded. Check it and try again.', 'error');
        onChange(await api.view(view.id));
      } else {
        notify(failure(e), 'error');
      }
    } finally {
      setBusy(false);
    }
  }

  const extend = () => act('Lease extended.', () => api.lease(view.id, 'extend'), 'reload');
  const release = () => act(`Released case ${shortId(view.id)} back to the queue.`, () => api.lease(view.id, 'release'), 'close');

  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey || busy) return;
      if (mine && event.key === 'e') void extend();
      else if (mine && event.key === 'r') void release();
      else if (mine && /^[0-9]$/.test(event.key)) {
        const n = Number(event.key);
        if (n === 0) setChoice('no-match');
        else if (view.candidates[n - 1]) setChoice(view.candidates[n - 1]!.memberRef);
        else return;
      } else if (event.key === 'd') reasonBox.current?.focus();
      else return;
      event.preventDefault();
    }
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  });

  function decide(event: Event) {
    event.preventDefault();
    if (!choice) return notify('Choose a candidate, or no match.', 'error');
    const body = choice === 'no-match' ? { decision: 'no-match' as const, reason: reason.trim() } : { decision: 'match' as const, memberRef: choice, reason: reason.trim() };
    void act(
      view.highRisk ? 'Decision recorded: a second reviewer must confirm it (high risk).' : 'Decision recorded.',
      () => api.decide(view.id, body),
      view.highRisk ? 'reload' : 'close',
    );
  }

  const proposed = view.decidedMemberRef ? view.candidates.findIndex((c) => c.memberRef === view.decidedMemberRef) : -1;
  const decisionText =
    view.decision === 'no-match' ? 'no match' : view.decision === 'match' ? `match: candidate ${proposed >= 0 ? proposed + 1 : '?'}` : undefined;

  return html`
    <main id="main" class="case">
      <div class="toolbar">
        <button type="button" onClick=${onClose} aria-keyshortcuts="q">← Queue <kbd aria-hidden="true">q</kbd></button>
        <h1 ref=${heading} tabindex="-1" id="case-heading">Case ${shortId(view.id)}</h1>
        <span class="badge" data-status=${view.status} id="case-status">${STATUS_LABEL[view.status]}</span>
        ${view.highRisk && html`<span class="badge risk">High risk: four eyes</span>`}
        ${mine && view.leaseExpiresAt && html`<${LeaseTimer} expiresAt=${view.leaseExpiresAt} />`}
      </div>
      <dl class="facts">
        <div><dt>Reason</dt><dd>${view.reason}</dd></div>
        <div><dt>Partner</dt><dd>${view.partnerClientId ?? 'own batch job'}</dd></div>
        <div><dt>Opened</dt><dd>${duration(view.ageSeconds)} ago</dd></div>
        <div><dt>SLA</dt><dd class=${sla.overdue ? 'overdue' : ''}>${sla.text}</dd></div>
        <div><dt>Priority</dt><dd>${view.priority}</dd></div>
        <div><dt>Model</dt><dd>${view.modelVersion}</dd></div>
        ${view.leaseOwner && !mine && html`<div><dt>Claimed by</dt><dd>${view.leaseOwner}</dd></div>`}
        ${decisionText && html`<div><dt>Decision</dt><dd id="case-decision">${decisionText} (by ${view.decidedBy}${view.confirmedBy ? `, confirmed by ${view.confirmedBy}` : ''})</dd></div>`}
      </dl>

      <section aria-labelledby="compare-heading">
        <h2 id="compare-heading">Request and candidates</h2>
        <${SideBySide} view=${view} />
      </section>

      <section aria-labelledby="weights-heading">
        <h2 id="weights-heading">Match weight, field by field</h2>
        <div class="waterfalls">
          ${view.candidates.map((c, i) => html`<div class="panel"><h3>Candidate ${i + 1}</h3><${Waterfall} candidate=${c} index=${i} /></div>`)}
        </div>
      </section>

      ${mine &&
      html`<section class="panel act" aria-labelledby="decide-heading">
        <h2 id="decide-heading">Decide</h2>
        ${view.highRisk && html`<p class="note">High risk: after you decide, a second, different reviewer must confirm before the partner is answered.</p>`}
        <form onSubmit=${decide}>
          <fieldset>
            <legend>Which member is the person in the request?</legend>
            ${view.candidates.map(
              (c, i) => html`<label class="choice"><input type="radio" name="decision" id=${`choice-${i + 1}`} value=${c.memberRef}
                checked=${choice === c.memberRef} onChange=${() => setChoice(c.memberRef)} />
                Candidate ${i + 1} (${percent(c.probability)}) <kbd aria-hidden="true">${i + 1}</kbd></label>`,
            )}
            <label class="choice"><input type="radio" name="decision" id="choice-none" value="no-match"
              checked=${choice === 'no-match'} onChange=${() => setChoice('no-match')} /> None of them: no match <kbd aria-hidden="true">0</kbd></label>
          </fieldset>
          <label for="decision-reason">Reason (kept in the audit trail; no member details)</label>
          <textarea id="decision-reason" ref=${reasonBox} required maxLength="500" rows="2" value=${reason}
            onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea>
          <div class="buttons">
            <button id="decide" class="primary" type="submit" disabled=${busy || !choice || !reason.trim()}>Record decision</button>
            <button id="extend" type="button" onClick=${extend} disabled=${busy} aria-keyshortcuts="e">Extend lease <kbd aria-hidden="true">e</kbd></button>
            <button id="release" type="button" onClick=${release} disabled=${busy} aria-keyshortcuts="r">Release <kbd aria-hidden="true">r</kbd></button>
          </div>
        </form>
      </section>`}

      ${view.status === 'awaiting-confirmation' &&
      html`<section class="panel act" aria-labelledby="confirm-heading">
        <h2 id="confirm-heading">Second reviewer</h2>
        <p>${view.decidedBy} proposes <strong>${decisionText}</strong>${view.decisionReason ? html`: “${view.decisionReason}”` : ''}.</p>
        ${canConfirm
          ? html`<form onSubmit=${(e: Event) => e.preventDefault()}>
              <label for="confirm-reason">Reason (kept in the audit trail)</label>
              <textarea id="confirm-reason" ref=${reasonBox} required maxLength="500" rows="2" value=${reason}
                onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea>
              <div class="buttons">
                <button id="confirm-agree" class="primary" type="button" disabled=${busy || !reason.trim()}
                  onClick=${() => act('Decision confirmed: the partner gets the answer.', () => api.confirm(view.id, { agree: true, reason: reason.trim() }), 'close')}>Confirm decision</button>
                <button id="confirm-reject" type="button" disabled=${busy || !reason.trim()}
                  onClick=${() => act('Decision rejected: the case is back in the queue.', () => api.confirm(view.id, { agree: false, reason: reason.trim() }), 'close')}>Reject decision</button>
              </div>
            </form>`
          : html`<p class="note">You proposed this decision: a different reviewer must confirm it.</p>`}
      </section>`}

      ${canReopen &&
      html`<section class="panel act" aria-labelledby="reopen-heading">
        <h2 id="reopen-heading">Reopen (supervisor)</h2>
        <form onSubmit=${(e: Event) => {
          e.preventDefault();
          void act('Case reopened: back in the queue at raised priority.', () => api.reopen(view.id, { reason: reason.trim() }), 'close');
        }}>
          <label for="reopen-reason">Why reopen it? (kept in the audit trail)</label>
          <textarea id="reopen-reason" ref=${reasonBox} required maxLength="500" rows="2" value=${reason}
            onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea>
          <div class="buttons"><button id="reopen" class="primary" type="submit" disabled=${busy || !reason.trim()}>Reopen case</button></div>
        </form>
      </section>`}
    </main>`;
}

// ---------------------------------------------------------------------------------------------------------------
// The page

function Shortcuts({ onClose }: { onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  return html`<dialog ref=${dialog} aria-labelledby="help-heading" onClose=${onClose} class="help">
    <h2 id="help-heading">Keyboard shortcuts</h2>
    <dl>
      <div><dt><kbd>n</kbd></dt><dd>claim the next case</dd></div>
      <div><dt><kbd>q</kbd></dt><dd>back to the queue</dd></div>
      <div><dt><kbd>l</kbd></dt><dd>member links</dd></div>
      <div><dt><kbd>1</kbd>–<kbd>9</kbd></dt><dd>choose that candidate</dd></div>
      <div><dt><kbd>0</kbd></dt><dd>choose no match</dd></div>
      <div><dt><kbd>d</kbd></dt><dd>go to the reason box</dd></div>
      <div><dt><kbd>e</kbd> / <kbd>r</kbd></dt><dd>extend / release the lease</dd></div>
      <div><dt><kbd>?</kbd></dt><dd>this help</dd></div>
    </dl>
    <form method="dialog"><button class="primary">Close</button></form>
  </dialog>`;
}

function Workbench({ api, session, onSignOut, notice, notify }: { api: Api; session: Session; onSignOut: () => void; notice: Notice | undefined; notify: Notify }) {
  const [view, setView] = useState<CaseView>();
  const [help, setHelp] = useState(false);
  const claimRef = useRef<() => void>(() => undefined);
  // Staff who may not work the queue (auditors, administrators) but may list links start on the links.
  const queueAllowed = session.roles.some((role) => role === 'reviewer' || role === 'supervisor');
  const linksAllowed = canListLinks(session);
  const [section, setSection] = useState<'queue' | 'links'>(!queueAllowed && linksAllowed ? 'links' : 'queue');
  const go = (to: 'queue' | 'links') => {
    setView(undefined);
    setSection(to);
  };

  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey || help) return;
      if (event.key === '?') setHelp(true);
      else if (event.key === 'q' && (view || section !== 'queue') && queueAllowed) go('queue');
      else if (event.key === 'l' && !view && section !== 'links' && linksAllowed) go('links');
      else if (event.key === 'n' && !view && section === 'queue') claimRef.current();
      else return;
      event.preventDefault();
    }
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  });

  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <span class="brand">member-match · review workbench</span>
      ${(queueAllowed || linksAllowed) &&
      html`<nav aria-label="Views" class="views">
        ${queueAllowed && html`<button type="button" id="nav-queue" aria-current=${section === 'queue' ? 'page' : undefined} onClick=${() => go('queue')}>Queue</button>`}
        ${linksAllowed && html`<button type="button" id="nav-links" aria-current=${section === 'links' ? 'page' : undefined} aria-keyshortcuts="l" onClick=${() => go('links')}>Links</button>`}
      </nav>`}
      <span class="who" id="who">${session.user} <span class="roles">(${session.roles.join(', ') || 'no role'})</span></span>
      <button type="button" onClick=${() => setHelp(true)} aria-keyshortcuts="?">Shortcuts <kbd aria-hidden="true">?</kbd></button>
      <button type="button" id="sign-out" onClick=${onSignOut}>Sign out</button>
    </header>
    <div id="notice" class=${notice ? `notice ${notice.kind}` : 'notice empty'} role=${notice?.kind === 'error' ? 'alert' : 'status'} aria-live="polite">${notice?.text ?? ''}</div>
    ${view
      ? html`<${CasePanel} api=${api} session=${session} view=${view} notify=${notify} onChange=${setView} onClose=${() => setView(undefined)} />`
      : section === 'links'
        ? html`<${LinksView} api=${api} session=${session} notify=${notify} />`
        : html`<${Queue} api=${api} session=${session} notify=${notify} onOpen=${setView} claimRef=${claimRef} />`}
    ${help && html`<${Shortcuts} onClose=${() => setHelp(false)} />`}`;
}

function App() {
  const [settings, setSettings] = useState<Settings>();
  const [session, setSession] = useState<Session | undefined>(currentSession);
  const [notice, setNotice] = useState<Notice>();
  const sessionRef = useRef(session);
  sessionRef.current = session;

  const notify = useCallback<Notify>((text, kind = 'info') => setNotice({ text, kind }), []);
  // An information notice has been announced (role=status) and read after a few seconds; it then goes, so it is
  // not mistaken for news about the next case. Errors stay until the next notice.
  useEffect(() => {
    if (notice?.kind !== 'info') return;
    const timer = setTimeout(() => setNotice(undefined), 10_000);
    return () => clearTimeout(timer);
  }, [notice]);
  const api = useMemo(
    () =>
      createApi(
        () => sessionRef.current?.token,
        () => {
          signOut();
          setSession(undefined);
          setNotice({ text: 'Your session ended: sign in again.', kind: 'error' });
        },
      ),
    [],
  );

  useEffect(() => {
    loadSettings()
      .then(async (loaded) => {
        setSettings(loaded);
        const signedIn = await completeSignIn(loaded);
        if (signedIn) setSession(signedIn);
      })
      .catch((e: unknown) => setNotice({ text: failure(e), kind: 'error' }));
  }, []);

  // Sign out when the token expires rather than on the first refused call.
  useEffect(() => {
    if (!session) return;
    const timer = setTimeout(() => {
      signOut();
      setSession(undefined);
      setNotice({ text: 'Your session expired: sign in again.', kind: 'info' });
    }, Math.max(0, session.expiresAt - Date.now()));
    return () => clearTimeout(timer);
  }, [session]);

  if (!session) return html`<${SignIn} settings=${settings} notice=${notice} />`;
  return html`<${Workbench} api=${api} session=${session} notice=${notice} notify=${notify}
    onSignOut=${() => {
      signOut();
      setSession(undefined);
      setNotice({ text: 'Signed out.', kind: 'info' });
    }} />`;
}

render(html`<${App} />`, document.getElementById('app')!);

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { failure, isApiError, type Api, type Link, type LinkStatus } from './api.js';
import type { Session } from './auth.js';
import { html } from './html.js';

/**
 * Link management (docs/workbench.md, "Links"): a partner's member links with the consent each stands on and its
 * status, over GET /admin/links; a supervisor revokes one with a reason (POST /admin/links/{id}/revoke), after a
 * confirmation step. Filters are organisation and client identifiers only: no member identifier goes into a
 * query string, and the page's address stays /review/.
 */

type Notify = (text: string, kind?: 'info' | 'error') => void;

export const LINK_STATUS_LABEL: Record<LinkStatus, string> = {
  active: 'Active',
  revoked: 'Revoked',
  'member-opted-out': 'Member opted out',
  'consent-expired': 'Consent expired',
  'consent-not-yet-valid': 'Consent not yet valid',
};

/** Who may list links and who may revoke one (src/policy/cedar: staff-read-member-links, supervisors-revoke-member-links). */
export const LINK_READER_ROLES = ['reviewer', 'supervisor', 'auditor', 'admin'];
export const canListLinks = (session: Session) => session.roles.some((role) => LINK_READER_ROLES.includes(role));
export const canRevokeLinks = (session: Session) => session.roles.includes('supervisor');

const PAGE = 50;
const shortId = (id: string) => id.slice(0, 8);
const day = (iso: string) => iso.slice(0, 10);
/** The consent policy as HRex names it (`#regular`, `#sensitive`); the full URI is in the cell's title. */
const policy = (uri: string) => (uri.includes('#') ? uri.slice(uri.lastIndexOf('#')) : uri);

interface Filter {
  partner: string;
  client: string;
  status: LinkStatus | '';
}

function RevokeForm({ link, busy, error, onRevoke, onCancel }: { link: Link; busy: boolean; error: string | undefined; onRevoke: (reason: string) => void; onCancel: () => void }) {
  const [reason, setReason] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [link.linkId]);
  // Escape cancels, wherever focus is (a button disabled while the request ran leaves it on the page). The
  // listener reads the props of the latest render, not of the render that registered it (effects run late).
  const latest = useRef({ busy, onCancel });
  latest.current = { busy, onCancel };
  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      if (event.key !== 'Escape' || latest.current.busy) return;
      event.preventDefault();
      latest.current.onCancel();
    }
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);
  return html`
    <section class="panel act revoke-panel" aria-labelledby="revoke-heading">
      <h2 id="revoke-heading" ref=${heading} tabindex="-1">Revoke link ${shortId(link.linkId)}?</h2>
      <p>Partner <strong>${link.partnerClientId}</strong> (${link.partnerOrganization}) loses access to member <strong>${link.memberId}</strong>${' '}
        at once: its Patient reads and searches stop finding the member. A revoked link stays revoked, even if the
        partner sends the same $member-match again.</p>
      ${error && html`<p id="revoke-error" class="notice error" role="alert">Not revoked: ${error}</p>`}
      <form onSubmit=${(e: Event) => {
        e.preventDefault();
        if (reason.trim()) onRevoke(reason.trim());
      }}>
        <label for="revoke-reason">Reason (kept with the link and in the audit trail; no member details)</label>
        <textarea id="revoke-reason" required maxLength="500" rows="2" value=${reason}
          onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea>
        <div class="buttons">
          <button id="revoke-confirm" class="primary danger" type="submit" disabled=${busy || !reason.trim()}>Revoke link</button>
          <button id="revoke-cancel" type="button" onClick=${onCancel} disabled=${busy}>Cancel</button>
        </div>
      </form>
    </section>`;
}

export function LinksView({ api, session, notify }: { api: Api; session: Session; notify: Notify }) {
  const [draft, setDraft] = useState<Filter>({ partner: '', client: '', status: '' });
  const [filter, setFilter] = useState<Filter>(draft);
  const [offset, setOffset] = useState(0);
  const [links, setLinks] = useState<Link[] | undefined>();
  const [pending, setPending] = useState<Link>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  /** Where focus goes back after the confirmation closes: the row's button, or the heading once it is gone. */
  const [returnTo, setReturnTo] = useState<string>();
  const heading = useRef<HTMLHeadingElement>(null);
  const supervisor = canRevokeLinks(session);

  const refresh = useCallback(async () => {
    try {
      setLinks(await api.links({ ...filter, limit: PAGE + 1, offset }));
    } catch (e) {
      setLinks([]);
      notify(`Could not load the links: ${failure(e)}`, 'error');
    }
  }, [api, filter, offset, notify]);

  useEffect(() => void refresh(), [refresh]);
  useEffect(() => heading.current?.focus(), []);
  useEffect(() => {
    if (pending || !returnTo) return;
    (document.getElementById(returnTo) ?? heading.current)?.focus();
    setReturnTo(undefined);
  }, [pending, returnTo, links]);

  function close(focus: string) {
    setPending(undefined);
    setError(undefined);
    setReturnTo(focus);
  }

  async function revoke(reason: string) {
    if (!pending) return;
    const link = pending;
    setBusy(true);
    setError(undefined);
    try {
      const revoked = await api.revokeLink(link.linkId, { reason });
      notify(`Link ${shortId(link.linkId)} revoked by ${revoked.revokedBy ?? session.user}: partner ${link.partnerClientId} no longer reads member ${link.memberId}.`);
      close('links-heading');
      await refresh();
    } catch (e) {
      // Someone else revoked it meanwhile: the list shows it as it is now, then the reason (rendered together
      // with the end of the request, so the form is usable again when the error shows).
      if (isApiError(e) && (e.status === 409 || e.status === 404)) await refresh();
      setError(failure(e));
    } finally {
      setBusy(false);
    }
  }

  const shown = (links ?? []).slice(0, PAGE);
  const more = (links ?? []).length > PAGE;
  const set = (change: Partial<Filter>) => setDraft((f) => ({ ...f, ...change }));

  return html`
    <main id="main" class="links">
      <div class="toolbar">
        <h1 id="links-heading" ref=${heading} tabindex="-1">Member links</h1>
      </div>
      <p class="lead">
        Each link lets a partner read one member, on the consent the partner sent with its $member-match.
        ${supervisor ? ' As a supervisor you can revoke a link.' : ' Only a supervisor can revoke a link.'}
      </p>
      <form class="panel filters" aria-labelledby="links-filters-heading" onSubmit=${(e: Event) => {
        e.preventDefault();
        setOffset(0);
        setFilter({ partner: draft.partner.trim(), client: draft.client.trim(), status: draft.status });
      }}>
        <h2 id="links-filters-heading">Filters</h2>
        <div class="filter-row">
          <label>Partner organisation
            <input id="links-filter-partner" type="search" value=${draft.partner} maxLength="300" placeholder="system|value" size="40"
              onInput=${(e: Event) => set({ partner: (e.target as HTMLInputElement).value })} />
          </label>
          <label>Partner client
            <input id="links-filter-client" type="search" value=${draft.client} maxLength="128" placeholder="client id"
              onInput=${(e: Event) => set({ client: (e.target as HTMLInputElement).value })} />
          </label>
          <label>Status
            <select id="links-filter-status" value=${draft.status} onChange=${(e: Event) => set({ status: (e.target as HTMLSelectElement).value as LinkStatus | '' })}>
              <option value="">Any status</option>
              ${(Object.keys(LINK_STATUS_LABEL) as LinkStatus[]).map((s) => html`<option value=${s}>${LINK_STATUS_LABEL[s]}</option>`)}
            </select>
          </label>
          <button id="links-apply" type="submit">Show links</button>
        </div>
      </form>

      ${pending && html`<${RevokeForm} link=${pending} busy=${busy} error=${error} onRevoke=${revoke} onCancel=${() => close(`revoke-${pending.linkId}`)} />`}

      <section aria-labelledby="links-list-heading">
        <h2 id="links-list-heading">Links <span class="count">(${links === undefined ? 'loading' : offset + shown.length === 0 ? 0 : `${offset + 1}–${offset + shown.length}`})</span></h2>
        ${links !== undefined && shown.length === 0
          ? html`<p class="empty">No link matches these filters.</p>`
          : html`<table class="links-table">
              <caption class="visually-hidden">Member links, newest first</caption>
              <thead><tr><th scope="col">Link</th><th scope="col">Member</th><th scope="col">Partner</th><th scope="col">Consent</th>
                <th scope="col">Status</th><th scope="col">Linked</th>${supervisor && html`<th scope="col"><span class="visually-hidden">Action</span></th>`}</tr></thead>
              <tbody>
                ${shown.map(
                  (l) => html`<tr key=${l.linkId} data-link=${l.linkId} data-status=${l.status}>
                    <th scope="row" class="mono">${shortId(l.linkId)}</th>
                    <td>${l.memberId}</td>
                    <td>${l.partnerClientId}<span class="sub">${l.partnerOrganization}</span></td>
                    <td><span title=${l.consent.policyUri}>${policy(l.consent.policyUri)}</span>
                      <span class="sub">${day(l.consent.periodStart)} to ${day(l.consent.periodEnd)}</span></td>
                    <td><span class=${`badge link-${l.status}`}>${LINK_STATUS_LABEL[l.status]}</span>
                      ${l.revokedAt && html`<span class="sub">by ${l.revokedBy ?? '?'} on ${day(l.revokedAt)}${l.revokeReason ? html`: “${l.revokeReason}”` : ''}</span>`}</td>
                    <td>${day(l.createdAt)}</td>
                    ${supervisor &&
                    html`<td>${l.status !== 'revoked' &&
                    html`<button type="button" id=${`revoke-${l.linkId}`} class="revoke" disabled=${busy}
                        aria-label=${`Revoke link ${shortId(l.linkId)} (member ${l.memberId}, partner ${l.partnerClientId})`}
                        onClick=${() => (setError(undefined), setPending(l))}>Revoke…</button>`}</td>`}
                  </tr>`,
                )}
              </tbody>
            </table>`}
        ${(offset > 0 || more) &&
        html`<div class="buttons pager">
          <button id="links-previous" type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous ${PAGE}</button>
          <button id="links-next" type="button" disabled=${!more} onClick=${() => setOffset(offset + PAGE)}>Next ${PAGE}</button>
        </div>`}
      </section>
    </main>`;
}

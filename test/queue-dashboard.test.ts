import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devIdpToken } from '../src/identity/humans.js';
import { latestAuditEvents, startTestService, type TestService } from './support/service.js';

/**
 * The queue dashboard (bull-board at /admin/queues): every queue, read-only for admins, supervisors may act;
 * a browser without a session is told how to get one instead of being shown an OperationOutcome.
 */
let ts: TestService;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
});
afterAll(() => ts?.stop());

const staff = (user: string, roles: string[]) => devIdpToken(ts.service.deps.db, ts.config, user, roles);

async function session(user: string, roles: string[]): Promise<{ status: number; cookie: string }> {
  const response = await fetch(`${ts.url}/admin/session`, { method: 'POST', headers: { authorization: `Bearer ${await staff(user, roles)}` } });
  return { status: response.status, cookie: response.headers.get('set-cookie')?.split(';')[0] ?? '' };
}

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('queue dashboard', () => {
  it('tells a browser without a session how to sign in, in HTML; API clients still get an OperationOutcome', async () => {
    const page = await fetch(`${ts.url}/admin/queues`, { headers: { accept: BROWSER_ACCEPT } });
    expect(page.status).toBe(401);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    const html = await page.text();
    expect(html).toContain('POST /admin/session');
    expect(html).not.toContain('OperationOutcome');
    expect(html).not.toContain('"resourceType"');
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'queue-dashboard', outcome: 'failure', http_status: 401, reason_code: 'session-missing' });

    const expired = await fetch(`${ts.url}/admin/queues`, { headers: { accept: BROWSER_ACCEPT, cookie: 'mm_staff_session=forged.token.value' } });
    expect(expired.status).toBe(401);
    expect(await expired.text()).toMatch(/sign in/i);

    const api = await fetch(`${ts.url}/admin/queues/api/queues`, { headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(((await api.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect((await fetch(`${ts.url}/admin/queues/api/queues`)).headers.get('content-type')).toMatch(/fhir\+json/); // curl's */*
  });

  it('shows every queue to an admin, read-only: job actions are refused', async () => {
    const { status, cookie } = await session('alice', ['admin']);
    expect(status).toBe(204);
    const api = await fetch(`${ts.url}/admin/queues/api/queues`, { headers: { cookie } });
    expect(api.status).toBe(200);
    const { queues } = (await api.json()) as { queues: { name: string; readOnlyMode: boolean }[] };
    expect(queues.map((q) => q.name).sort()).toEqual(['batch', 'review']);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
    const pause = await fetch(`${ts.url}/admin/queues/api/queues/review/pause`, { method: 'PUT', headers: { cookie, accept: 'application/json' } });
    expect(pause.status).toBe(403);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'queue-dashboard', http_status: 403, reason_code: 'role-missing' });
    expect(await ts.service.deps.reviewQueue!.isPaused()).toBe(false);
  });

  it('lets a supervisor act on jobs, audited', async () => {
    const { status, cookie } = await session('sam', ['supervisor']);
    expect(status).toBe(204);
    const api = await fetch(`${ts.url}/admin/queues/api/queues`, { headers: { cookie } });
    const { queues } = (await api.json()) as { queues: { name: string; readOnlyMode: boolean }[] };
    expect(queues.map((q) => q.name).sort()).toEqual(['batch', 'review']);
    expect(queues.some((q) => q.readOnlyMode)).toBe(false);
    const pause = await fetch(`${ts.url}/admin/queues/api/queues/batch/pause`, { method: 'PUT', headers: { cookie } });
    expect(pause.status).toBeLessThan(300);
    expect(await ts.service.deps.batchQueue!.isPaused()).toBe(true);
    const [event] = await latestAuditEvents(ts, 1);
    expect(event).toMatchObject({ operation: 'queue-dashboard', outcome: 'success', reason_code: 'dashboard-action' });
    expect((await fetch(`${ts.url}/admin/queues/api/queues/batch/resume`, { method: 'PUT', headers: { cookie } })).status).toBeLessThan(300);
    expect(await ts.service.deps.batchQueue!.isPaused()).toBe(false);
  });

  it('is not for reviewers', async () => {
    expect((await session('rita', ['reviewer'])).status).toBe(403);
  });
});

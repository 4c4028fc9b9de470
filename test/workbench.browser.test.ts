import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Coverage, Parameters, Patient } from 'fhir/r4.js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { devIdpToken } from '../src/identity/humans.js';
import { CONFLICT_PAIR_ROWS, getJson, HL7_EXAMPLE_MEMBER_ROW, importRows, NEW_PAYER_ORG, OTHER_PAYER_ORG, partnerToken, postMemberMatch, registerTestPartner, startTestService, type TestService } from './support/service.js';

/**
 * The reviewer workbench in a real browser (Debian's chromium, driven by puppeteer-core; no browser download):
 * a reviewer signs in through the development IdP (authorization code + PKCE), claims the case a partner's
 * $member-match opened, decides it; a second reviewer confirms it (four eyes); the partner's status URL then
 * answers 200 with the member. WORKBENCH_SCREENSHOT=docs/workbench.png saves the case view for the docs.
 * Then, as in production, without DEV_MODE: sign-in through another origin's OpenID Connect provider
 * (OIDC_ISSUER's discovery, CORS, the page's Content-Security-Policy). In between, link management: a
 * reviewer lists a partner's links without a revoke button; a supervisor revokes one and the partner's Patient
 * read answers 404; a revocation that loses a race shows the OperationOutcome's text.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// .ci/run installs chromium and sets WORKBENCH_BROWSER_REQUIRED: there a missing browser fails instead of skipping.
if (!existsSync(CHROMIUM)) {
  const hint = `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.WORKBENCH_BROWSER_REQUIRED) throw new Error(hint);
  console.warn(`workbench browser test skipped: ${hint}`);
}

/** A port free now, so the service can be told its own public URL before it starts (the IdP's redirect names it). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** The HRex example request about Lou Chen, one of a pair of equally good records: always a review case. */
function louChen(): Parameters {
  const request = hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' });
  const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as Patient;
  Object.assign(patient, {
    name: [{ family: 'Chen', given: ['Lou'] }],
    birthDate: '1970-07-07',
    gender: 'male',
    identifier: undefined,
    address: [{ use: 'home', line: ['12 Harbor Road'], city: 'Springfield', state: 'IL', postalCode: '62701' }],
    telecom: [{ system: 'phone', value: '555-0142' }],
  });
  const coverage = request.parameter!.find((p) => p.name === 'CoverageToMatch')!.resource as Coverage;
  delete coverage.identifier;
  coverage.subscriberId = 'L500';
  return request;
}

/**
 * A stand-in for the organisation's OpenID Connect provider on another origin: discovery, an authorization
 * endpoint that signs 'pat' (a reviewer) straight in, a token endpoint checking PKCE, its JWKS; CORS for the
 * browser's discovery and token requests, as a real provider offers a registered single-page client.
 */
async function startFakeIdp(): Promise<{ issuer: string; tokensIssued(): number; close(): Promise<void> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'fake-1', alg: 'ES256' };
  const codes = new Map<string, { challenge: string; nonce: string; clientId: string }>();
  let issued = 0;
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}/realms/staff`;
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' }).end(JSON.stringify(body));
  };
  const readBody = async (req: IncomingMessage) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    return new URLSearchParams(body);
  };
  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/realms/staff/.well-known/openid-configuration') {
      return json(res, 200, { issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
    }
    if (url.pathname === '/realms/staff/jwks') return json(res, 200, { keys: [jwk] });
    if (url.pathname === '/realms/staff/auth') {
      const code = randomBytes(16).toString('base64url');
      codes.set(code, { challenge: url.searchParams.get('code_challenge') ?? '', nonce: url.searchParams.get('nonce') ?? '', clientId: url.searchParams.get('client_id') ?? '' });
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (url.pathname === '/realms/staff/token' && req.method === 'POST') {
      const form = await readBody(req);
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      if (!grant || createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url') !== grant.challenge) return json(res, 400, { error: 'invalid_grant' });
      issued += 1;
      const idToken = await new SignJWT({ roles: ['reviewer'], nonce: grant.nonce })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
        .setIssuer(issuer)
        .setSubject('pat')
        .setAudience(grant.clientId)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      return json(res, 200, { id_token: idToken, access_token: 'opaque', token_type: 'Bearer', expires_in: 300 });
    }
    json(res, 404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { issuer, tokensIssued: () => issued, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let ts: TestService;
let browser: Browser;
let userDataDir: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  const port = await freePort();
  ts = await startTestService({ DEV_MODE: 'true', PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, REVIEW_RETRY_AFTER_SECONDS: '60' });
  // The conflict pair makes review cases; the HL7 example member is matched outright (a link, for the Links view).
  await importRows(ts, [...CONFLICT_PAIR_ROWS, HL7_EXAMPLE_MEMBER_ROW]);
  userDataDir = mkdtempSync(path.join(tmpdir(), 'mm-chromium-'));
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, `--user-data-dir=${userDataDir}`] });
});

afterAll(async () => {
  await browser?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await ts?.stop();
});

/** A tab of its own (its own sessionStorage: one staff member per context), failing the test on any script error or CSP report. */
async function openTab(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.setViewport({ width: 1280, height: 900 });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) pageErrors.push(message.text());
  });
  return page;
}

async function signIn(page: Page, user: string, roles: string[]): Promise<void> {
  await page.goto(`${ts.url}/review/`);
  await page.locator('#sign-in').click();
  // The development IdP's login page: pick a user and roles.
  await page.waitForSelector('form[action="authorize"]');
  await page.locator('#user').fill(user);
  for (const box of await page.$$('input[name="roles"]')) {
    const value = await box.evaluate((el) => (el as unknown as { value: string }).value);
    const checked = await box.evaluate((el) => (el as unknown as { checked: boolean }).checked);
    if (roles.includes(value) !== checked) await box.click();
  }
  await Promise.all([page.waitForNavigation(), page.locator('#sign-in').click()]);
  await waitForText(page, '#who', user);
  // The code and state are gone from the address bar; no PHI was ever in it.
  expect(new URL(page.url()).search).toBe('');
}

/** Form controls, buttons and links a screen reader would announce without a name (a missing label). */
async function unnamedControls(page: Page): Promise<string[]> {
  type Node = { role: string; name?: string; children?: Node[] };
  const roles = new Set(['button', 'link', 'textbox', 'searchbox', 'combobox', 'checkbox', 'radio', 'spinbutton']);
  const unnamed: string[] = [];
  const walk = (node: Node | null) => {
    if (!node) return;
    if (roles.has(node.role) && !node.name?.trim()) unnamed.push(node.role);
    node.children?.forEach(walk);
  };
  walk((await page.accessibility.snapshot({ interestingOnly: true })) as Node | null);
  return unnamed;
}

const text = (page: Page, selector: string) => page.$eval(selector, (el) => el.textContent ?? '');
/** Waits until the element's text contains `expected` (the page's own DOM, read in the browser). */
async function waitForText(page: Page, selector: string, expected: string): Promise<void> {
  await page.waitForFunction(`document.querySelector(${JSON.stringify(selector)})?.textContent?.includes(${JSON.stringify(expected)})`);
}

describe.skipIf(!existsSync(CHROMIUM))('reviewer workbench in chromium', () => {
  it('signs in with PKCE, claims, decides; a second reviewer confirms; the partner status URL answers 200', { timeout: 120_000 }, async () => {
    const partner = await partnerToken(ts, await registerTestPartner(ts));
    const accepted = await postMemberMatch(ts, partner, louChen(), { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const statusUrl = accepted.headers.get('content-location')!;
    const caseId = statusUrl.split('/').pop()!;
    const poll = () => fetch(statusUrl, { headers: { authorization: `Bearer ${partner}` } });
    expect((await poll()).status).toBe(202);

    // First reviewer: sign in, claim with the keyboard, compare, decide.
    const ann = await openTab(browser.defaultBrowserContext());
    await signIn(ann, 'ann', ['reviewer']);
    await ann.waitForSelector('tr[data-case]');
    expect(await unnamedControls(ann)).toEqual([]);
    // The queue's heading has focus after sign-in; Tab goes on in reading order: claim, then the filters.
    expect(await ann.evaluate('document.activeElement.id')).toBe('queue-heading');
    await ann.keyboard.press('Tab');
    expect(await ann.evaluate('document.activeElement.id')).toBe('claim-next');
    await ann.keyboard.press('Tab');
    expect(await ann.evaluate('document.activeElement.id')).toBe('filter-status');
    await ann.focus('#queue-heading'); // shortcuts are ignored while a form control has focus
    await ann.keyboard.press('n');
    await ann.waitForSelector('#case-heading');
    expect(await text(ann, '#case-heading')).toContain(caseId.slice(0, 8));
    expect(await text(ann, '#lease-timer')).toMatch(/Lease \d+:\d\d left/);
    const table = await text(ann, 'table.side-by-side');
    expect(table).toContain('Chen');
    expect(table).not.toContain('555-0142'); // contact details masked
    expect(table).toContain('•••0142');
    expect(await ann.$$eval('figure.waterfall svg', (svgs) => svgs.length)).toBe(2);
    expect(await unnamedControls(ann)).toEqual([]);
    if (process.env.WORKBENCH_SCREENSHOT) await ann.screenshot({ path: process.env.WORKBENCH_SCREENSHOT as `${string}.png`, fullPage: true });
    await ann.keyboard.press('1');
    expect(await ann.$eval('#choice-1', (el) => (el as unknown as { checked: boolean }).checked)).toBe(true);
    await ann.locator('#decision-reason').fill('subscriber confirmed the date of birth by phone');
    // Meanwhile the case changes under the page (ann extends the lease from elsewhere): the ETag the page holds
    // is stale, the decision answers 412, and the page reloads the case and says so, keeping the choice.
    const elsewhere = await devIdpToken(ts.service.deps.db, ts.config, 'ann', ['reviewer']);
    const seen = await fetch(`${ts.url}/review/cases/${caseId}`, { headers: { authorization: `Bearer ${elsewhere}` } });
    const extended = await fetch(`${ts.url}/review/cases/${caseId}/lease`, {
      method: 'POST',
      headers: { authorization: `Bearer ${elsewhere}`, 'content-type': 'application/json', 'if-match': seen.headers.get('etag')! },
      body: JSON.stringify({ action: 'extend' }),
    });
    expect(extended.status).toBe(200);
    await ann.locator('#decide').click();
    await waitForText(ann, '#notice', 'The case changed since you opened it');
    expect(await text(ann, '#case-status')).toBe('Claimed');
    await ann.locator('#decide').click();
    await waitForText(ann, '#case-status', 'Awaiting confirmation');
    expect(await text(ann, '#confirm-heading + p')).toContain('ann proposes');
    expect(await ann.$('#confirm-agree')).toBeNull(); // not by the same reviewer
    expect((await poll()).status).toBe(202);

    // Second reviewer, in a browser context of their own: finds the case awaiting confirmation and confirms it.
    const context = await browser.createBrowserContext();
    const ivy = await openTab(context);
    await signIn(ivy, 'ivy', ['reviewer', 'supervisor']);
    await ivy.waitForSelector('#stats-heading'); // supervisors see the statistics
    await ivy.select('#filter-status', 'awaiting-confirmation');
    await ivy.waitForSelector(`tr[data-case="${caseId}"] button`);
    await ivy.locator(`tr[data-case="${caseId}"] button`).click();
    await ivy.waitForSelector('#confirm-reason');
    await ivy.locator('#confirm-reason').fill('the birth date and subscriber agree');
    await ivy.locator('#confirm-agree').click();
    await waitForText(ivy, '#notice', 'Decision confirmed');

    // The partner's status URL now answers with the member.
    const done = await poll();
    expect(done.status).toBe(200);
    const parameters = (await done.json()) as any;
    expect(['30007', '30008']).toContain(parameters.parameter.find((p: any) => p.name === 'MemberIdentifier').valueIdentifier.value);
    const row = await ts.service.deps.db.selectFrom('review_cases').select(['status', 'decided_by', 'confirmed_by']).where('id', '=', caseId).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'decided', decided_by: 'ann', confirmed_by: 'ivy' });

    // The supervisor may reopen a decided case from the workbench.
    await ivy.select('#filter-status', 'decided');
    await ivy.waitForSelector(`tr[data-case="${caseId}"] button`);
    await ivy.locator(`tr[data-case="${caseId}"] button`).click();
    await ivy.waitForSelector('#reopen-reason');
    await context.close();

    expect(pageErrors).toEqual([]);
  });
  it("lists member links; a supervisor revokes one, the partner's read ends; a reviewer cannot revoke", { timeout: 120_000 }, async () => {
    // Two partners (two organisations: a link is the organisation's) match the HL7 example member outright.
    const matchAs = async (organization: typeof NEW_PAYER_ORG) => {
      const partner = await registerTestPartner(ts, { organization });
      const token = await partnerToken(ts, partner);
      const res = await postMemberMatch(ts, token, hrexExampleRequest({ recipient: organization, policy: 'sensitive' }));
      expect(res.status).toBe(200);
      const memberUuid = res.body.parameter.find((p: any) => p.name === 'MemberId').valueReference.reference.split('/').pop() as string;
      expect((await getJson(ts, `/fhir/Patient/${memberUuid}`, token)).status).toBe(200);
      return { clientId: partner.clientId, token, memberUuid };
    };
    const first = await matchAs(NEW_PAYER_ORG);
    const second = await matchAs(OTHER_PAYER_ORG);
    const showLinks = async (page: Page, client: string, status = '') => {
      await page.locator('#links-filter-client').fill(client);
      await page.select('#links-filter-status', status);
      await page.locator('#links-apply').click();
      // Until every row listed is that client's (the list has reloaded with the filter).
      const c = JSON.stringify(client);
      await page.waitForFunction(
        `[...document.querySelectorAll('tr[data-link]')].every((row) => row.textContent.includes(${c})) && !document.querySelector('#links-list-heading').textContent.includes('loading')`,
      );
    };

    // A reviewer sees the links, their consent and status, and no revoke button.
    const reviewerContext = await browser.createBrowserContext();
    const rae = await openTab(reviewerContext);
    await signIn(rae, 'rae', ['reviewer']);
    await rae.locator('#nav-links').click();
    await rae.waitForSelector('#links-heading');
    await rae.waitForFunction(`document.activeElement?.id === 'links-heading'`); // focus goes to the view's heading
    await showLinks(rae, first.clientId);
    await rae.waitForSelector('tr[data-link]');
    const row = await text(rae, 'tr[data-link]');
    expect(row).toContain('55678');
    expect(row).toContain('#sensitive');
    expect(row).toContain('Active');
    expect(await rae.$$('button.revoke')).toHaveLength(0);
    expect(await unnamedControls(rae)).toEqual([]);
    expect(rae.url()).toBe(`${ts.url}/review/`); // no filter or identifier in the address
    await reviewerContext.close();

    // An auditor may not work the queue: the page opens on the links, with no queue to go to and no revoke button.
    const auditorContext = await browser.createBrowserContext();
    const aud = await openTab(auditorContext);
    await signIn(aud, 'aud', ['auditor']);
    await aud.waitForFunction(`document.activeElement?.id === 'links-heading'`);
    expect(await aud.$('#nav-queue')).toBeNull();
    await showLinks(aud, first.clientId);
    await aud.waitForSelector('tr[data-link]');
    expect(await aud.$$('button.revoke')).toHaveLength(0);
    await auditorContext.close();

    // A supervisor opens the links with the keyboard, revokes the first partner's link with a reason.
    const supervisorContext = await browser.createBrowserContext();
    const sue = await openTab(supervisorContext);
    await signIn(sue, 'sue', ['supervisor']);
    await sue.waitForFunction(`document.activeElement?.id === 'queue-heading'`);
    await sue.keyboard.press('l');
    await sue.waitForSelector('#links-heading');
    await showLinks(sue, first.clientId, 'active');
    await sue.waitForSelector('tr[data-link] button.revoke');
    const linkId = await sue.$eval('tr[data-link]', (el) => el.getAttribute('data-link')!);
    await sue.locator(`#revoke-${linkId}`).click();
    await sue.waitForFunction(`document.activeElement?.id === 'revoke-heading'`);
    expect(await text(sue, '#revoke-heading + p')).toContain(`Partner ${first.clientId} (${NEW_PAYER_ORG.system}|${NEW_PAYER_ORG.value}) loses access to member 55678 at once`);
    expect(await sue.$eval('#revoke-confirm', (el) => (el as unknown as { disabled: boolean }).disabled)).toBe(true); // no reason yet
    expect(await unnamedControls(sue)).toEqual([]);
    await sue.locator('#revoke-reason').fill('member disputes the match');
    await sue.locator('#revoke-confirm').click();
    await waitForText(sue, '#notice', `Link ${linkId.slice(0, 8)} revoked by sue`);
    expect(await sue.$('#revoke-heading')).toBeNull();
    await sue.waitForFunction(`document.activeElement?.id === 'links-heading'`);
    await waitForText(sue, '#links-list-heading', '(0)'); // no longer active
    await showLinks(sue, first.clientId, 'revoked');
    await waitForText(sue, `tr[data-link="${linkId}"]`, 'by sue');
    expect(await text(sue, `tr[data-link="${linkId}"]`)).toContain('member disputes the match');
    expect(await sue.$(`#revoke-${linkId}`)).toBeNull();
    // The partner's access ended at once; the other partner's link is untouched.
    expect((await getJson(ts, `/fhir/Patient/${first.memberUuid}`, first.token)).status).toBe(404);
    expect((await getJson(ts, `/fhir/Patient/${second.memberUuid}`, second.token)).status).toBe(200);

    // Someone revokes the second link while the confirmation is open: the page shows the server's reason.
    await showLinks(sue, second.clientId, 'active');
    await sue.waitForSelector('tr[data-link] button.revoke');
    const secondId = await sue.$eval('tr[data-link]', (el) => el.getAttribute('data-link')!);
    // Cancel closes the confirmation and gives focus back to the row's button.
    await sue.locator(`#revoke-${secondId}`).click();
    await sue.waitForSelector('#revoke-cancel');
    await sue.locator('#revoke-cancel').click();
    await sue.waitForFunction(`document.activeElement?.id === ${JSON.stringify(`revoke-${secondId}`)}`);
    expect(await sue.$('#revoke-heading')).toBeNull();
    await sue.keyboard.press('Enter'); // the keyboard opens it again
    await sue.waitForFunction(`document.activeElement?.id === 'revoke-heading'`);
    await sue.locator('#revoke-reason').fill('duplicate of a revoked link');
    const elsewhere = await devIdpToken(ts.service.deps.db, ts.config, 'sam', ['supervisor']);
    const meanwhile = await fetch(`${ts.url}/admin/links/${secondId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${elsewhere}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'revoked from the CLI' }),
    });
    expect(meanwhile.status).toBe(200);
    await sue.locator('#revoke-confirm').click();
    await waitForText(sue, '#revoke-error', 'the link is already revoked (409 link-already-revoked)');
    await sue.keyboard.press('Escape');
    await sue.waitForFunction(`!document.querySelector('#revoke-heading')`);
    await sue.waitForFunction(`document.activeElement?.id === 'links-heading'`); // the row's button went with the link
    expect(sue.url()).toBe(`${ts.url}/review/`);
    await supervisorContext.close();
    expect(pageErrors).toEqual([]);
  });
  it('signs in through an external OIDC_ISSUER, found by discovery, as in production', { timeout: 120_000 }, async () => {
    const idp = await startFakeIdp();
    const port = await freePort();
    const prod = await startTestService({
      PORT: String(port),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      OIDC_ISSUER: idp.issuer,
      OIDC_JWKS_URL: `${idp.issuer}/jwks`,
    });
    try {
      const page = await openTab(await browser.createBrowserContext());
      await page.goto(`${prod.url}/review/`);
      expect(await text(page, '#sign-in')).toContain(`Sign in with ${new URL(idp.issuer).host}`);
      await Promise.all([page.waitForNavigation(), page.locator('#sign-in').click()]);
      await waitForText(page, '#who', 'pat');
      // The ID token from the other origin is accepted by the review API: the queue loads.
      await page.waitForFunction(`document.querySelector('#cases-heading')?.textContent?.includes('(0)')`);
      expect(idp.tokensIssued()).toBe(1);
      await page.browserContext().close();
    } finally {
      await prod.stop();
      await idp.close();
    }
    expect(pageErrors).toEqual([]);
  });
});

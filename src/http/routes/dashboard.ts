import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { Router, type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import { jwtVerify, SignJWT, createLocalJWKSet, type JWK } from 'jose';
import { AuthenticationError, ForbiddenError } from '../../errors.js';
import type { Actor } from '../../identity/actor.js';
import { staffActor } from '../../identity/humans.js';
import { authorize } from '../../policy/authorize.js';
import { policyRequest, type ResourceRef } from '../../policy/cedar-policy.js';
import type { AppDeps } from '../deps.js';
import { auditAs, noteRefusal, requestAudit } from '../request-context.js';
import { writeRequestAudit } from '../../audit/request-audit.js';

/**
 * The BullMQ dashboard (@bull-board/express) at /admin/queues, showing every queue (review, batch). A browser
 * cannot attach our bearer token to the dashboard's own API calls, so staff first exchange their OIDC token
 * for a short-lived session cookie (`POST /admin/session`): HttpOnly, SameSite=Strict, scoped to
 * /admin/queues, signed by the service key. Every dashboard request is authorized by the policy like any
 * other: looking is `administer` on Operations::"queues" (admins, supervisors); acting on jobs — retry,
 * promote, clean, delete an SLA timer — is `administer` on Operations::"queue-actions" (supervisors only), so
 * admins get a read-only board (bull-board's `readOnlyMode`, which also refuses writes on its API).
 */
export const DASHBOARD_PATH = '/admin/queues';
const COOKIE = 'mm_staff_session';
const SESSION_SECONDS = 900;

export async function issueDashboardSession(deps: AppDeps, actor: Actor): Promise<string> {
  const key = deps.signingKey;
  return new SignJWT({ roles: [...(actor.roles ?? [])] })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'staff-session+jwt' })
    .setIssuer(deps.config.publicBaseUrl)
    .setAudience(`${deps.config.publicBaseUrl}${DASHBOARD_PATH}`)
    .setSubject(actor.subject)
    .setIssuedAt()
    .setExpirationTime(`${SESSION_SECONDS}s`)
    .sign(key.privateKey);
}

export function sessionCookie(deps: AppDeps, token: string): string {
  const secure = deps.config.publicBaseUrl.startsWith('https://') ? '; Secure' : '';
  return `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=${DASHBOARD_PATH}; Max-Age=${SESSION_SECONDS}${secure}`;
}

const QUEUES: ResourceRef = { type: 'Operations', id: 'queues' };
const QUEUE_ACTIONS: ResourceRef = { type: 'Operations', id: 'queue-actions' };

/** One bull-board over the queues, read-only or not, as an Express app of its own. */
function board(queues: readonly Queue[], readOnlyMode: boolean): Express {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode })), serverAdapter });
  // bull-board serves the dashboard from an Express app of its own, which sends X-Powered-By unless told not to.
  const app = serverAdapter.getRouter() as Express;
  app.disable('x-powered-by');
  return app;
}

export function dashboardRouter(deps: AppDeps, queues: readonly Queue[]): Router {
  const keySet = createLocalJWKSet({ keys: [deps.signingKey.publicJwk as JWK] });
  const readOnlyBoard = board(queues, true);
  const actingBoard = board(queues, false);

  const staffFromCookie: RequestHandler = async (req, res, next) => {
    const cookie = (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
    if (!cookie) throw new AuthenticationError('session-missing', 'sign in with POST /admin/session first');
    let payload;
    try {
      ({ payload } = await jwtVerify(cookie, keySet, {
        issuer: deps.config.publicBaseUrl,
        audience: `${deps.config.publicBaseUrl}${DASHBOARD_PATH}`,
        typ: 'staff-session+jwt',
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      throw new AuthenticationError('session-invalid', 'the staff session is not valid; sign in again', { cause: error });
    }
    const actor = staffActor(deps.config, payload.sub as string, payload.roles, `session:${payload.iat ?? ''}`);
    res.locals.actor = actor;
    requestAudit(res).actor = actor;
    authorize(deps.policy, requestAudit(res), actor, 'administer', QUEUES);
    // Opening the session is audited (POST /admin/session), and so is every request that changes a job (or
    // is refused one); the dashboard's polling reads are not recorded one by one.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      authorize(deps.policy, requestAudit(res), actor, 'administer', QUEUE_ACTIONS);
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'dashboard-action' });
    } else requestAudit(res).written = true;
    next();
  };

  // The board this member of staff gets: with job actions only if the policy lets them act.
  const chosenBoard: RequestHandler = (req, res, next) => {
    const mayAct = deps.policy.decide(policyRequest(res.locals.actor as Actor, 'administer', QUEUE_ACTIONS)).decision === 'allow';
    (mayAct ? actingBoard : readOnlyBoard)(req, res, next);
  };

  const router = Router();
  router.use(auditAs('queue-dashboard'), staffFromCookie, chosenBoard);
  router.use(signInPage(deps));
  return router;
}

/**
 * A browser that opens the dashboard without a (valid) session, or with a role that may not see it, gets a
 * short page saying what to do instead of an OperationOutcome; API clients (no `text/html` preference) still
 * get the OperationOutcome from the error handler. The refusal is audited as any other.
 */
function signInPage(deps: AppDeps): ErrorRequestHandler {
  return async (error: unknown, req, res, next) => {
    if (!(error instanceof AuthenticationError || error instanceof ForbiddenError) || !prefersHtml(req)) {
      next(error);
      return;
    }
    try {
      await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'failure', httpStatus: error.status, reasonCode: error.code });
    } catch (auditError) {
      next(auditError);
      return;
    }
    noteRefusal(res, error.code);
    if (error.status === 401) res.set('WWW-Authenticate', 'Bearer realm="member-match"');
    res
      .status(error.status)
      .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
      .type('html')
      .send(error instanceof ForbiddenError ? NOT_ALLOWED_PAGE : SIGN_IN_PAGE);
  };
}

function prefersHtml(req: Request): boolean {
  return req.accepts(['application/json', 'application/fhir+json', 'text/html']) === 'text/html';
}

const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#1a1a1a}code,pre{background:#f2f2f2;padding:.1em .3em}pre{padding:.8em;overflow:auto}</style>
</head><body><h1>${title}</h1>${body}</body></html>
`;

const SIGN_IN_PAGE = page(
  'Sign in to the queue dashboard',
  `<p>The queue dashboard needs a staff session, and this browser has none (or it expired: sessions last ${SESSION_SECONDS / 60} minutes).</p>
<p>Exchange your staff access token (from the organisation's sign-in, or <code>member-match dev-idp token</code> with <code>DEV_MODE=true</code>) for a session cookie with <code>POST /admin/session</code>, from this browser's origin, then open this page again:</p>
<pre>fetch('/admin/session', { method: 'POST', headers: { Authorization: 'Bearer ' + token } })</pre>
<p>Administrators and supervisors may open the dashboard; only supervisors may act on jobs.</p>`,
);

const NOT_ALLOWED_PAGE = page(
  'Not allowed',
  `<p>Your role does not allow this. Administrators and supervisors may look at the queue dashboard; only supervisors may retry, promote or remove jobs.</p>`,
);

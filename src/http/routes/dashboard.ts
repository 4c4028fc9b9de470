import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { Router, type Express, type RequestHandler } from 'express';
import { jwtVerify, SignJWT, createLocalJWKSet, type JWK } from 'jose';
import { AuthenticationError } from '../../errors.js';
import type { Actor } from '../../identity/actor.js';
import { staffActor } from '../../identity/humans.js';
import { authorize } from '../../policy/authorize.js';
import type { AppDeps } from '../deps.js';
import { auditAs, requestAudit } from '../request-context.js';
import { writeRequestAudit } from '../../audit/request-audit.js';

/**
 * The BullMQ dashboard (@bull-board/express) at /admin/queues, for the `admin` role. A browser cannot attach
 * our bearer token to the dashboard's own API calls, so an admin first exchanges their OIDC token for a
 * short-lived session cookie (`POST /admin/session`): HttpOnly, SameSite=Strict, scoped to /admin/queues,
 * signed by the service key. Every dashboard request is authorized by the policy like any other.
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

export function dashboardRouter(deps: AppDeps, queue: Queue): Router {
  const keySet = createLocalJWKSet({ keys: [deps.signingKey.publicJwk as JWK] });
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(queue, { readOnlyMode: false })], serverAdapter });

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
    authorize(deps.policy, requestAudit(res), actor, 'administer', { type: 'Operations', id: 'queues' });
    // Opening the session is audited (POST /admin/session), and so is every request that changes a job; the
    // dashboard's polling reads are not recorded one by one.
    if (req.method !== 'GET') await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'dashboard-action' });
    else requestAudit(res).written = true;
    next();
  };

  // bull-board serves the dashboard from an Express app of its own, which sends X-Powered-By unless told not to.
  const board = serverAdapter.getRouter() as Express;
  board.disable('x-powered-by');
  const router = Router();
  router.use(auditAs('queue-dashboard'), staffFromCookie, board);
  return router;
}

import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import type { RequestAudit } from '../audit/request-audit.js';
import type { AuthFailureGuard } from './auth-failures.js';
import { AppError, AuthenticationError } from '../errors.js';
import { httpDuration, refusals } from '../metrics.js';
import type { Actor } from '../identity/actor.js';
import type { AccessTokenVerifier } from '../identity/access-tokens.js';
import { clientCertificateThumbprint } from '../identity/client-certificate.js';
import type { Redis } from 'ioredis';
import { enforceRequestRate, type LimitSettings } from '../policy/limits.js';
import { authorize } from '../policy/authorize.js';
import type { BusinessAction, PolicyEngine, ResourceRef } from '../policy/cedar-policy.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Gives every request an id (the caller's, when it is safe to echo) and an empty audit record, and measures
 * it: on the response, its latency by route pattern and status and, for an error, its reason code.
 */
export function requestContext(): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => observeResponse(req, res, started));
    const offered = req.headers['x-request-id'];
    const requestId = typeof offered === 'string' && SAFE_REQUEST_ID.test(offered) ? offered : randomUUID();
    req.headers['x-request-id'] = requestId;
    res.set('X-Request-Id', requestId);
    const audit: RequestAudit = {
      requestId,
      sourceIp: req.ip,
      operation: 'unknown',
      details: {},
      written: false,
    };
    res.locals.audit = audit;
    next();
  };
}

export function requestAudit(res: Response): RequestAudit {
  return res.locals.audit as RequestAudit;
}

/**
 * Names the operation the audit event will record. Every route and every router's fallback starts with it, so
 * it is also where the route pattern is known in full (the router's mount path is in `baseUrl` only while the
 * request is inside it): that pattern, never the URL, labels the request's latency.
 */
export function auditAs(operation: string): RequestHandler {
  return (req, res, next) => {
    requestAudit(res).operation = operation;
    res.locals.route = `${req.baseUrl}${typeof req.route?.path === 'string' ? req.route.path : '/*'}`;
    next();
  };
}

/**
 * The route label of a request: the pattern `auditAs` saw, an app-level route's own path (/healthz), or, for a
 * request no route took (a 404, a URL refused before routing, static files), one of the API's prefixes or
 * `unmatched` — never anything taken from the URL beyond those fixed prefixes.
 */
const ROUTE_PREFIXES = ['/fhir', '/oauth', '/review', '/rosters', '/admin', '/.well-known'];

function routeOf(req: Request, res: Response): string {
  if (typeof res.locals.route === 'string') return res.locals.route;
  if (typeof req.route?.path === 'string') return req.route.path;
  const path = req.originalUrl.split('?')[0] ?? '';
  const prefix = ROUTE_PREFIXES.find((p) => path === p || path.startsWith(`${p}/`));
  return prefix ? `${prefix}/*` : 'unmatched';
}

/** Reason codes are short kebab-case constants of this code base; anything else is `other` (bounded labels). */
const REASON_CODE = /^[a-z0-9][a-z0-9-]{0,47}$/;

/** Records why the request is being refused, for its log line and the refusal count. */
export function noteRefusal(res: Response, reasonCode: string): void {
  res.locals.refusal = REASON_CODE.test(reasonCode) ? reasonCode : 'other';
}

/**
 * Error middleware placed just before the error handler: notes the refusal's reason code and passes the error
 * on. An error that is not one of ours (a body parser's, a driver's) is named by its status class here; the
 * audit event and the OperationOutcome carry the error handler's finer code.
 */
export const noteRefusalOf: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (error instanceof AppError) noteRefusal(res, error.code);
  else {
    const status = (error as { status?: unknown } | null)?.status;
    noteRefusal(res, typeof status === 'number' && status >= 400 && status < 500 ? 'request-unreadable' : 'internal-error');
  }
  next(error);
};

/** A refused request's reason code: the one noted, else `not-found` for the final 404, else its status. */
function refusalOf(res: Response): string | undefined {
  if (res.statusCode < 400) return undefined;
  if (typeof res.locals.refusal === 'string') return res.locals.refusal;
  return res.statusCode === 404 ? 'not-found' : `http-${res.statusCode}`;
}

function observeResponse(req: Request, res: Response, started: bigint): void {
  const status = String(res.statusCode);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  httpDuration.observe({ method: req.method, route: routeOf(req, res), status }, seconds);
  const reason = refusalOf(res);
  if (reason) refusals.inc({ reason, status });
}

/**
 * What a request's log line adds to its method, path and status: who called (the client id — a registered
 * client, workload or `human:<staff subject>`, never a member) and, for a refusal, its reason code.
 */
export function requestLogFields(req: Request, res: Response): Record<string, string> {
  const actor = res.locals.actor as Actor | undefined;
  const fields: Record<string, string> = {};
  if (actor) {
    fields.clientId = actor.clientId;
    fields.actorClass = actor.actorClass;
  }
  // Called when the request arrives too (pino-http's child logger): route and outcome only once answered.
  if (res.headersSent || res.writableFinished) {
    fields.route = routeOf(req, res);
    const reason = refusalOf(res);
    if (reason) fields.reason = reason;
  }
  return fields;
}

/** Bearer authentication with our own access tokens; the actor lands on the audit record and res.locals. */
type Verify = AccessTokenVerifier | ((token: string) => Promise<Actor>);

async function bearerActor(req: Request, res: Response, verify: Verify, failures: AuthFailureGuard | undefined): Promise<Actor> {
  try {
    failures?.refuseIfThrottled(req.ip);
  } catch (error) {
    requestAudit(res).written = true; // counted into the source's per-minute aggregate instead
    throw error;
  }
  try {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(header) : null;
    if (!match) throw new AuthenticationError('token-missing', 'a Bearer access token is required');
    const actor = await verify(match[1]!, { certificateThumbprint: clientCertificateThumbprint(req) });
    res.locals.actor = actor;
    requestAudit(res).actor = actor;
    return actor;
  } catch (error) {
    if (error instanceof AuthenticationError && failures?.recordFailure(req.ip) === 'aggregate') requestAudit(res).written = true;
    throw error;
  }
}

export function authenticate(verify: Verify, failures?: AuthFailureGuard): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    await bearerActor(req, res, verify, failures);
    next();
  };
}

/** Authenticates the bearer token, then counts the request against its client's rate limit. */
export function authenticateAndThrottle(verify: Verify, redis: Redis, limits: LimitSettings, failures?: AuthFailureGuard): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const actor = await bearerActor(req, res, verify, failures);
    await enforceRequestRate(redis, limits, actor.clientId);
    next();
  };
}

export function currentActor(res: Response): Actor {
  return res.locals.actor as Actor;
}

/**
 * Authorizes the request's business action by the Cedar policy set (src/policy), recording the decision on the
 * audit record; a deny is a 403. The resource may depend on the caller (a partner's member directory).
 */
export function requireAction(policy: PolicyEngine, action: BusinessAction, resource: ResourceRef | ((actor: Actor) => ResourceRef)): RequestHandler {
  return (_req, res, next) => {
    const actor = currentActor(res);
    authorize(policy, requestAudit(res), actor, action, typeof resource === 'function' ? resource(actor) : resource);
    next();
  };
}

import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { RequestAudit } from '../audit/request-audit.js';
import type { AuthFailureGuard } from './auth-failures.js';
import { AuthenticationError } from '../errors.js';
import type { Actor } from '../identity/actor.js';
import type { AccessTokenVerifier } from '../identity/access-tokens.js';
import { clientCertificateThumbprint } from '../identity/client-certificate.js';
import type { Redis } from 'ioredis';
import { enforceRequestRate, type LimitSettings } from '../policy/limits.js';
import { authorize } from '../policy/authorize.js';
import type { BusinessAction, PolicyEngine, ResourceRef } from '../policy/cedar-policy.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Gives every request an id (the caller's, when it is safe to echo) and an empty audit record. */
export function requestContext(): RequestHandler {
  return (req, res, next) => {
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

/** Names the operation the audit event will record. */
export function auditAs(operation: string): RequestHandler {
  return (_req, res, next) => {
    requestAudit(res).operation = operation;
    next();
  };
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

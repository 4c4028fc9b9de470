import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import {
  AppError,
  InvalidRequestError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  TooManyRequestsError,
  ReviewPendingError,
  UnsupportedMediaTypeError,
} from '../errors.js';
import { operationOutcome } from '../fhir/operation-outcome.js';
import { writeRequestAudit } from '../audit/request-audit.js';
import type { AppDeps } from './deps.js';
import { requestAudit } from './request-context.js';

/**
 * The one place errors become responses: OAuth JSON under /oauth, an OperationOutcome everywhere else.
 * Every failure is audited before it is answered; an unexpected error is logged without its message (which
 * could quote data) and answered as a plain 500.
 */
export function errorHandler(deps: AppDeps): ErrorRequestHandler {
  return async (rawError: unknown, req, res, _next) => {
    const error = toAppError(rawError);
    if (!error) logUnexpected(deps, req, rawError);
    const status = error?.status ?? 500;
    const code = error?.code ?? 'internal-error';

    const audit = requestAudit(res);
    try {
      await writeRequestAudit(deps.db, audit, { outcome: 'failure', httpStatus: status, reasonCode: code });
    } catch (auditError) {
      logUnexpected(deps, req, auditError);
      sendError(req, res, new ServiceUnavailableError('audit-unavailable', 'the request could not be audited and was not processed', { oauthError: 'temporarily_unavailable' }));
      return;
    }
    if (res.headersSent) return;
    if (error) sendError(req, res, error);
    else sendInternal(req, res);
  };
}

/**
 * The last handler of a path: every method not routed above it is refused with 405 and the methods that are
 * (Allow), rather than falling through to a 404 or, worse, to a sibling route that reads the operation's name
 * as an id (`GET /fhir/Patient/$member-match` was a Patient read).
 */
export function methodNotAllowed(...allow: string[]): RequestHandler {
  return () => {
    throw new MethodNotAllowedError(allow);
  };
}

/** Maps errors raised by our code and by express' body parsers; anything else is unexpected. */
function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  const type = (error as { type?: unknown } | null)?.type;
  switch (type) {
    case 'entity.too.large':
      return new PayloadTooLargeError('body-too-large', 'the request body is larger than this server accepts');
    case 'entity.parse.failed':
      return new InvalidRequestError('malformed-json', 'the request body is not valid JSON', { oauthError: 'invalid_request' });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError('unsupported-encoding', 'unsupported content encoding or charset');
    case 'parameters.too.many':
      return new InvalidRequestError('too-many-parameters', 'the form has too many parameters', { oauthError: 'invalid_request' });
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new InvalidRequestError('body-unreadable', 'the request body could not be read', { oauthError: 'invalid_request' });
  }
  // Postgres refuses a character it cannot store (a NUL in text): a client's value, rejected whole (the
  // statement's transaction rolled back). The body and URL guards catch it first; this is the backstop.
  const pgCode = (error as { code?: unknown } | null)?.code;
  if (pgCode === '22021' || pgCode === '22P05') {
    return new InvalidRequestError('invalid-character', 'a value holds a character that cannot be stored', { oauthError: 'invalid_request' });
  }
  // Anything else the body parser or router marks as the client's fault: a corrupt gzip/deflate/br body (the
  // decompressor's error, wrapped as a 400), a malformed URL escape (the router's URIError, status 400).
  const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status ?? (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new PayloadTooLargeError('body-too-large', 'the request body is larger than this server accepts');
    if (status === 415) return new UnsupportedMediaTypeError('unsupported-encoding', 'unsupported content encoding or charset');
    return new InvalidRequestError('request-unreadable', 'the request could not be read: check its URL, Content-Encoding and body', { oauthError: 'invalid_request' });
  }
  return undefined;
}

function isOAuthPath(req: Request): boolean {
  return req.originalUrl.startsWith('/oauth/');
}

function sendError(req: Request, res: Response, error: AppError): void {
  if (isOAuthPath(req)) {
    const oauthError = error.oauthError ?? (error.status === 401 ? 'invalid_client' : error.status >= 500 ? 'server_error' : 'invalid_request');
    const status = oauthError === 'invalid_client' ? 401 : error.status;
    res.status(status).set('Cache-Control', 'no-store').json({ error: oauthError, error_description: error.message });
    return;
  }
  if (error.status === 401) res.set('WWW-Authenticate', wwwAuthenticate(error));
  if (error instanceof MethodNotAllowedError) res.set('Allow', error.allow.join(', '));
  if (error.status === 503) res.set('Retry-After', '5');
  if (error instanceof TooManyRequestsError || error instanceof ReviewPendingError) res.set('Retry-After', String(error.retryAfterSeconds));
  res
    .status(error.status)
    .type('application/fhir+json')
    .send(
      JSON.stringify(
        operationOutcome({
          code: error.issueType,
          reason: error.code,
          diagnostics: error.message,
          ...(error.expression ? { expression: error.expression } : {}),
        }),
      ),
    );
}

/**
 * RFC 6750 §3.1: a request that sent no token gets the bare challenge (no error code); one whose token failed
 * gets `invalid_token`.
 */
function wwwAuthenticate(error: AppError): string {
  return error.code === 'token-missing' ? 'Bearer realm="member-match"' : 'Bearer realm="member-match", error="invalid_token"';
}

function sendInternal(req: Request, res: Response): void {
  if (res.headersSent) return;
  if (isOAuthPath(req)) {
    res.status(500).json({ error: 'server_error', error_description: 'internal error' });
    return;
  }
  res
    .status(500)
    .type('application/fhir+json')
    .send(JSON.stringify(operationOutcome({ code: 'exception', reason: 'internal-error', diagnostics: 'internal error' })));
}

/** Logs the error's kind and where it came from, never its message: driver errors quote the values. */
function logUnexpected(deps: AppDeps, req: Request, error: unknown): void {
  const e = error as { name?: string; code?: string; constraint?: string; stack?: string };
  deps.logger.error(
    {
      requestId: req.headers['x-request-id'],
      errName: e?.name,
      errCode: e?.code,
      constraint: e?.constraint,
      frames: e?.stack?.split('\n').slice(1, 8).map((l) => l.trim()),
    },
    'unexpected error',
  );
}

/**
 * The one error hierarchy. Each error knows its HTTP status, a stable machine code and a message that is safe
 * to show a client: messages never contain names, birth dates or identifiers. `src/http/errors.ts` maps them
 * to an OperationOutcome under /fhir and to OAuth JSON under /oauth, in one place.
 */

/** FHIR `OperationOutcome.issue.code` values that we use. */
export type IssueType =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'login'
  | 'forbidden'
  | 'not-found'
  | 'too-long'
  | 'not-supported'
  | 'business-rule'
  | 'processing'
  | 'exception'
  | 'throttled'
  | 'transient';

export interface AppErrorOptions {
  /** FHIRPath of the offending element, for 400s. */
  expression?: string;
  /** OAuth error code, for errors raised under /oauth. */
  oauthError?: string;
  cause?: unknown;
}

export abstract class AppError extends Error {
  abstract readonly status: number;
  abstract readonly issueType: IssueType;
  readonly expression: string | undefined;
  readonly oauthError: string | undefined;

  /** @param code stable, machine-readable reason (`consent-expired`, `no-match`, …) used in audit events. */
  constructor(
    readonly code: string,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.expression = options.expression;
    this.oauthError = options.oauthError;
  }
}

/** 400: the request is malformed or breaks the resource's structure. */
export class InvalidRequestError extends AppError {
  readonly status = 400;
  readonly issueType: IssueType = 'invalid';
}

/** 400 with issue type `structure`: a FHIR structural rule (cardinality, reference form) is broken. */
export class StructureError extends InvalidRequestError {
  override readonly issueType: IssueType = 'structure';
}

/** 401: no credentials, or credentials that do not verify. */
export class AuthenticationError extends AppError {
  readonly status = 401;
  readonly issueType: IssueType = 'login';
}

/** 403: authenticated, but not allowed to do this. */
export class ForbiddenError extends AppError {
  readonly status = 403;
  readonly issueType: IssueType = 'forbidden';
}

export class NotFoundError extends AppError {
  readonly status = 404;
  readonly issueType: IssueType = 'not-found';
}

export class PayloadTooLargeError extends AppError {
  readonly status = 413;
  readonly issueType: IssueType = 'too-long';
}

export class UnsupportedMediaTypeError extends AppError {
  readonly status = 415;
  readonly issueType: IssueType = 'not-supported';
}

/** 405: the path exists, but not for this method; `allow` lists the methods it answers (the Allow header). */
export class MethodNotAllowedError extends AppError {
  readonly status = 405;
  readonly issueType: IssueType = 'not-supported';

  constructor(readonly allow: readonly string[]) {
    super('method-not-allowed', `this endpoint answers ${allow.join(', ')} only`);
  }
}

/** 409: the resource is not in a state that allows this (a lease not held, a case already decided). */
export class ConflictError extends AppError {
  readonly status = 409;
  readonly issueType: IssueType = 'business-rule';
}

/** 412: an If-Match precondition is stale (optimistic concurrency). */
export class PreconditionFailedError extends AppError {
  readonly status = 412;
  readonly issueType: IssueType = 'business-rule';
}

/** 428: a change that needs If-Match was sent without it (RFC 6585): the client must read the ETag first. */
export class PreconditionRequiredError extends AppError {
  readonly status = 428;
  readonly issueType: IssueType = 'required';
}

/** 422: well-formed, but a business rule says no (no match, consent cannot be honoured, …). */
export class BusinessRuleError extends AppError {
  readonly status = 422;
  readonly issueType: IssueType = 'business-rule';
}

/** 422 for a request whose match is with a human reviewer: names the case, and when to ask again. */
export class ReviewPendingError extends BusinessRuleError {
  constructor(
    readonly caseId: string,
    readonly retryAfterSeconds: number,
  ) {
    super('manual-review-required', `the match is under manual review (case ${caseId}); submit the same request again later`);
  }
}

/** 429: too many requests, or this client's matching is locked for a cooling-off period. */
export class TooManyRequestsError extends AppError {
  readonly status = 429;
  readonly issueType: IssueType = 'throttled';

  constructor(
    code: string,
    message: string,
    /** Seconds until the client may try again (Retry-After). */
    readonly retryAfterSeconds: number,
  ) {
    super(code, message);
  }
}

/** 503: a dependency (database, Redis) is unavailable; the client may retry. */
export class ServiceUnavailableError extends AppError {
  readonly status = 503;
  readonly issueType: IssueType = 'transient';
}

/** 500 for work that failed on our side after it was accepted (a batch job whose chunks kept failing). */
export class ProcessingFailedError extends AppError {
  readonly status = 500;
  readonly issueType: IssueType = 'exception';
}

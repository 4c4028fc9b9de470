import express, { type RequestHandler } from 'express';
import { InvalidRequestError } from '../errors.js';

/**
 * Request bodies and URLs, read defensively: a client's mistake (or attack) is a 400 here, never a stack
 * overflow or a database error later. Every JSON and form route parses its body through `jsonBody` or
 * `formBody`, and `rejectHostileUrl` runs before any route.
 */

/** Deeper than any FHIR resource this service takes; deep enough that recursive code downstream is safe. */
export const MAX_JSON_DEPTH = 64;

/**
 * Walks a parsed body iteratively (an explicit stack, so the walk itself cannot overflow): no string may hold
 * a NUL character (Postgres text cannot store one), and no value may nest deeper than `MAX_JSON_DEPTH`.
 */
export function checkParsedBody(body: unknown): void {
  const stack: [unknown, number][] = [[body, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) throw new InvalidRequestError('nul-character', 'strings may not contain the NUL character', { oauthError: 'invalid_request' });
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) throw new InvalidRequestError('too-deep', `the body nests deeper than ${MAX_JSON_DEPTH} levels`, { oauthError: 'invalid_request' });
    if (Array.isArray(value)) for (const item of value) stack.push([item, depth + 1]);
    else for (const [key, item] of Object.entries(value)) stack.push([key, depth + 1], [item, depth + 1]);
  }
}

const checkBody: RequestHandler = (req, _res, next) => {
  checkParsedBody(req.body);
  next();
};

/** A JSON body of the given media types, at most `limit` bytes once decompressed, checked as above. */
export function jsonBody(options: { limit: number | string; type?: string[] }): RequestHandler[] {
  return [express.json({ limit: options.limit, strict: true, ...(options.type ? { type: options.type } : {}) }), checkBody];
}

/** An `application/x-www-form-urlencoded` body (OAuth), checked as above. */
export function formBody(options: { limit: string; parameterLimit: number }): RequestHandler[] {
  return [express.urlencoded({ extended: false, ...options }), checkBody];
}

/**
 * A NUL anywhere in the path or query (`%00`) is refused before routing: it can reach no route usefully and
 * Postgres would refuse it later. (A malformed escape such as `%E0%A4%A` is refused by the router itself with
 * status 400, mapped in src/http/errors.ts.)
 */
export const rejectHostileUrl: RequestHandler = (req, _res, next) => {
  if (/%00/i.test(req.originalUrl) || req.originalUrl.includes('\u0000')) {
    throw new InvalidRequestError('nul-character', 'the URL may not contain the NUL character', { oauthError: 'invalid_request' });
  }
  next();
};

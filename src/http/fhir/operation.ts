import type { Response } from 'express';
import { writeRequestAudit, type RequestAudit, type RequestResult } from '../../audit/request-audit.js';
import type { Db } from '../../db/database.js';
import type { Actor } from '../../identity/actor.js';
import { withoutEmptyArrays } from '../../fhir/resources.js';

/**
 * FHIR operations are adapters: each parses its input, calls the domain, and *returns* what to answer. They
 * never touch Express; `sendResult` is the one place an answer leaves, after its audit event is written
 * (unless the operation already wrote it in the transaction of its effect). Refusals are thrown as AppErrors,
 * which src/http/errors.ts maps to an OperationOutcome in one place.
 */
export interface OperationResult {
  status: number;
  /** A FHIR resource (or, for a bulk-data manifest, plain JSON); none for an empty answer. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  audit: Pick<RequestResult, 'outcome' | 'reasonCode'>;
}

/** What an operation knows of the request besides its body. */
export interface OperationContext {
  actor: Actor;
  /** The request's audit record: the operation adds references (never demographics) to it. */
  audit: RequestAudit;
}

export async function sendResult(db: Db, audit: RequestAudit, res: Response, result: OperationResult): Promise<void> {
  await writeRequestAudit(db, audit, { ...result.audit, httpStatus: result.status });
  res.status(result.status);
  for (const [name, value] of Object.entries(result.headers ?? {})) res.set(name, value);
  if (result.body === undefined) {
    res.end();
    return;
  }
  const contentType = result.contentType ?? 'application/fhir+json';
  if (contentType.endsWith('ndjson')) res.type(contentType).send(String(result.body));
  // A FHIR resource goes out without empty arrays; plain JSON (a bulk-data manifest, whose `error: []` the
  // Bulk Data spec requires) as built.
  else res.type(contentType).send(JSON.stringify(contentType === 'application/fhir+json' ? withoutEmptyArrays(result.body) : result.body));
}

/** A success answer with a FHIR resource. */
export function ok(body: unknown, reasonCode = 'ok', status = 200): OperationResult {
  return { status, body, audit: { outcome: 'success', reasonCode } };
}

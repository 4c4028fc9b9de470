import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiError, CliError, cliFetch, networkErrorMessage, responseBody } from './http.js';

/**
 * A workload's side of roster reconciliation, over the API: upload the file (streamed, never read into
 * memory; `.gz` files are sent as they are, with Content-Encoding: gzip), then follow the job until it ends.
 */

export interface JobStatus {
  id: string;
  state: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  totalRows: number;
  rowsDone: number;
  progress: number;
  counts: Record<string, number>;
  error?: string;
}

/** Workload tokens live minutes: a long reconciliation may outlive the one it started with. */
const TOKEN_HINT = ' (the token may have expired: get a new one with `member-match workload token` and pass it as --token or MEMBER_MATCH_TOKEN)';

function uploadHeaders(file: string): Record<string, string> {
  const lower = file.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  const type = base.endsWith('.csv') ? 'text/csv' : base.endsWith('.ndjson') || base.endsWith('.jsonl') ? 'application/fhir+ndjson' : undefined;
  if (!type) throw new CliError('the roster must be .csv, .ndjson or .jsonl, optionally .gz');
  return { 'content-type': type, ...(gzip ? { 'content-encoding': 'gzip' } : {}) };
}

/** Uploads a roster; resolves with the job (a new one, or the one this upload already has). */
export async function uploadRoster(baseUrl: string, token: string, file: string): Promise<{ job: JobStatus; created: boolean }> {
  const size = (await stat(file)).size;
  const response = await cliFetch(`${baseUrl}/rosters`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-length': String(size), ...uploadHeaders(file) },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const body = await responseBody(response);
  if (response.status !== 202 && response.status !== 200) throw new ApiError(response.status, body, response.status === 401 ? TOKEN_HINT : '');
  return { job: body as JobStatus, created: response.status === 202 };
}

export async function rosterJob(baseUrl: string, token: string, id: string): Promise<JobStatus> {
  const response = await cliFetch(`${baseUrl}/rosters/${id}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await responseBody(response);
  if (response.status !== 200) throw new ApiError(response.status, body, response.status === 401 ? TOKEN_HINT : '');
  return body as JobStatus;
}

/** Polls the job every `intervalMs` until it ends, reporting each status. */
export async function followRosterJob(
  baseUrl: string,
  token: string,
  id: string,
  onStatus: (job: JobStatus) => void,
  intervalMs = 1_000,
): Promise<JobStatus> {
  for (;;) {
    const job = await rosterJob(baseUrl, token, id);
    onStatus(job);
    if (job.state !== 'queued' && job.state !== 'running') return job;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function downloadResults(baseUrl: string, token: string, id: string, file: string): Promise<void> {
  const response = await cliFetch(`${baseUrl}/rosters/${id}/results`, { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200 || !response.body) throw new ApiError(response.status, await responseBody(response));
  try {
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(file));
  } catch (error) {
    // The file system's own errors (ENOENT, EACCES) say what they are; a dropped connection does not.
    if ((error as { syscall?: string }).syscall) throw error;
    throw new CliError(networkErrorMessage(baseUrl, error), { cause: error });
  }
}

/** `[#########-----------]  45.0%  45,000 / 100,000 rows  2,113 rows/s` */
export function progressLine(job: JobStatus, elapsedSeconds: number, width = 30): string {
  const filled = Math.round(job.progress * width);
  const rate = elapsedSeconds > 0 ? Math.round(job.rowsDone / elapsedSeconds) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(job.progress * 100).toFixed(1).padStart(5)}%  ${job.rowsDone.toLocaleString('en-US')} / ${job.totalRows.toLocaleString('en-US')} rows  ${rate.toLocaleString('en-US')} rows/s  ${job.state}`;
}

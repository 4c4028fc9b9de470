import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

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

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`the service answered ${status}: ${JSON.stringify(body)}`);
  }
}

function uploadHeaders(file: string): Record<string, string> {
  const lower = file.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  const type = base.endsWith('.csv') ? 'text/csv' : base.endsWith('.ndjson') || base.endsWith('.jsonl') ? 'application/fhir+ndjson' : undefined;
  if (!type) throw new Error('the roster must be .csv, .ndjson or .jsonl, optionally .gz');
  return { 'content-type': type, ...(gzip ? { 'content-encoding': 'gzip' } : {}) };
}

async function json(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

/** Uploads a roster; resolves with the job (a new one, or the one this upload already has). */
export async function uploadRoster(baseUrl: string, token: string, file: string): Promise<{ job: JobStatus; created: boolean }> {
  const size = (await stat(file)).size;
  const response = await fetch(`${baseUrl}/rosters`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-length': String(size), ...uploadHeaders(file) },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const body = await json(response);
  if (response.status !== 202 && response.status !== 200) throw new ApiError(response.status, body);
  return { job: body as JobStatus, created: response.status === 202 };
}

export async function rosterJob(baseUrl: string, token: string, id: string): Promise<JobStatus> {
  const response = await fetch(`${baseUrl}/rosters/${id}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await json(response);
  if (response.status !== 200) throw new ApiError(response.status, body);
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
  const response = await fetch(`${baseUrl}/rosters/${id}/results`, { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200 || !response.body) throw new ApiError(response.status, await json(response));
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(file));
}

/** `[#########-----------]  45.0%  45,000 / 100,000 rows  2,113 rows/s` */
export function progressLine(job: JobStatus, elapsedSeconds: number, width = 30): string {
  const filled = Math.round(job.progress * width);
  const rate = elapsedSeconds > 0 ? Math.round(job.rowsDone / elapsedSeconds) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(job.progress * 100).toFixed(1).padStart(5)}%  ${job.rowsDone.toLocaleString('en-US')} / ${job.totalRows.toLocaleString('en-US')} rows  ${rate.toLocaleString('en-US')} rows/s  ${job.state}`;
}

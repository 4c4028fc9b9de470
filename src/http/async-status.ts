import type { BatchJob } from '../batch/jobs.js';
import type { ReviewCase } from '../review/review-cases.js';

/**
 * The one view of asynchronous work behind every status URL — a single match with a reviewer
 * (`member-match-status`), a bulk match (`bulk-member-match-status`) and a roster job (`/rosters/{id}`): is it
 * still going, how far along, when to ask again. Each endpoint keeps its documented payload; what "still going"
 * means and which headers say so is decided here, once.
 */
export interface AsyncWork {
  state: 'in-progress' | 'completed' | 'failed' | 'cancelled';
  /** Rows (or members) done of the total, for `X-Progress`. */
  progress?: { done: number; total: number; unit: string };
  retryAfterSeconds: number;
}

export function jobWork(job: BatchJob, retryAfterSeconds: number, unit: string): AsyncWork {
  const state = job.state === 'queued' || job.state === 'running' ? 'in-progress' : job.state;
  return { state, progress: { done: job.rowsDone, total: job.totalRows, unit }, retryAfterSeconds };
}

export function reviewWork(review: ReviewCase, retryAfterSeconds: number): AsyncWork {
  return { state: review.status === 'decided' ? 'completed' : 'in-progress', retryAfterSeconds };
}

/** The headers of work still in progress: when to ask again and, where known, how far along it is. */
export function inProgressHeaders(work: AsyncWork): Record<string, string> {
  const headers: Record<string, string> = { 'Retry-After': String(work.retryAfterSeconds) };
  if (work.progress) {
    const { done, total, unit } = work.progress;
    headers['X-Progress'] = `${total === 0 ? 100 : Math.floor((done / total) * 100)}% (${done} of ${total} ${unit})`;
  }
  return headers;
}

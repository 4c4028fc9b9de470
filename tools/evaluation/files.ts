import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';

/**
 * The evaluation file formats (written by `member-match synth` and the FEBRL adapter):
 *  - queries.ndjson: `{"id": "...", "parameters": <HRex $member-match Parameters>}` per line;
 *  - truth.csv: `query_id,member_id,hazard`, member_id empty for a person who is not a member.
 */

export interface EvaluationQuery {
  id: string;
  parameters: unknown;
}

export interface TruthRow {
  memberId: string | undefined;
  hazard: string;
}

export async function* readQueries(file: string): AsyncGenerator<EvaluationQuery> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (!line.trim()) continue;
    const parsed = JSON.parse(line) as { id?: unknown; parameters?: unknown };
    if (typeof parsed.id !== 'string') throw new Error(`${file}:${lineNumber}: query without a string id`);
    yield { id: parsed.id, parameters: parsed.parameters };
  }
}

export async function readTruth(file: string): Promise<Map<string, TruthRow>> {
  const truth = new Map<string, TruthRow>();
  const parser = createReadStream(file).pipe(parse({ columns: true, skip_empty_lines: true, trim: true }));
  for await (const row of parser as AsyncIterable<Record<string, string>>) {
    truth.set(row.query_id!, { memberId: row.member_id || undefined, hazard: row.hazard ?? '' });
  }
  return truth;
}

/** Runs `work` over an async sequence with at most `concurrency` in flight; rejects on the first failure. */
export async function forEachConcurrently<T>(items: AsyncIterable<T>, concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for await (const item of items) {
    const task = work(item).finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

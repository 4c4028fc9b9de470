import type { Readable } from 'node:stream';
import type { CoverageRecord, MemberRecord } from '../member-repository.js';
import type { SharingCode } from './columns.js';
import { readRosterCsv } from './csv-reader.js';
import { RosterFileError } from './errors.js';
import { MAX_NDJSON_LINE_LENGTH, parseNdjsonRosterLine, readLines } from './ndjson-reader.js';
import { validateRosterRow } from './validate.js';

/** A roster file as items to write: either format, read in file order (docs/roster-format.md). */

export type RosterFormat = 'csv' | 'ndjson';

/** Format and compression from a file name: `.csv`, `.ndjson`, `.jsonl`, each optionally `.gz`. */
export function rosterFileFormat(filePath: string): { format: RosterFormat; gzip: boolean } {
  const lower = filePath.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  if (base.endsWith('.csv')) return { format: 'csv', gzip };
  if (base.endsWith('.ndjson') || base.endsWith('.jsonl')) return { format: 'ndjson', gzip };
  throw new RosterFileError('unsupported roster file name: expected .csv, .ndjson or .jsonl, optionally followed by .gz');
}

/** A row read from the file: something to write, or the reason it was rejected. */
export type RosterItem =
  | { line: number; kind: 'row'; member: MemberRecord; coverage: CoverageRecord; sharing: SharingCode | null }
  | { line: number; kind: 'patient'; member: MemberRecord }
  | { line: number; kind: 'coverage'; coverage: CoverageRecord; beneficiaryId: string }
  | { line: number; kind: 'rejected'; reason: string };

async function* csvItems(input: Readable): AsyncGenerator<RosterItem, void, undefined> {
  for await (const event of readRosterCsv(input)) {
    if ('reason' in event) {
      yield { line: event.line, kind: 'rejected', reason: event.reason };
      continue;
    }
    const row = validateRosterRow(event.fields);
    yield row.ok
      ? { line: event.line, kind: 'row', member: row.member, coverage: row.coverage, sharing: row.sharing }
      : { line: event.line, kind: 'rejected', reason: row.reason };
  }
}

async function* ndjsonItems(input: Readable, memberIdentifierSystem: string): AsyncGenerator<RosterItem, void, undefined> {
  for await (const event of readLines(input)) {
    if ('tooLong' in event) {
      yield { line: event.line, kind: 'rejected', reason: `line is longer than ${MAX_NDJSON_LINE_LENGTH} characters` };
      continue;
    }
    const item = parseNdjsonRosterLine(event.text, memberIdentifierSystem);
    yield { line: event.line, ...item };
  }
}

/** The items of a roster stream (already decompressed), in file order; roster reconciliation reads the same. */
export function readRosterItems(input: Readable, format: RosterFormat, memberIdentifierSystem: string): AsyncGenerator<RosterItem, void, undefined> {
  return format === 'csv' ? csvItems(input) : ndjsonItems(input, memberIdentifierSystem);
}

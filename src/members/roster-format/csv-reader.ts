import type { Readable } from 'node:stream';
import { parse, type Info } from 'csv-parse';
import { REQUIRED_ROSTER_COLUMNS, ROSTER_CSV_COLUMNS, type RosterColumn, type RosterFields } from './columns.js';
import { RosterFileError } from './errors.js';

/** The roster CSV reader (the format: docs/roster-format.md). */

/** Longest accepted CSV record: a runaway quoted field fails fast instead of buffering the file. */
const MAX_RECORD_BYTES = 64 * 1024;

/** One data row of a roster CSV: its fields, or why it cannot be read as a row. */
export type CsvRosterEvent = { line: number; fields: RosterFields } | { line: number; reason: string };

const CSV_ERROR_TEXT: Record<string, string> = {
  CSV_INVALID_CLOSING_QUOTE: 'a quoted field is followed by characters other than a delimiter',
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed',
  CSV_MAX_RECORD_SIZE: `a record is longer than ${MAX_RECORD_BYTES} bytes (probably an unclosed quote)`,
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'a quoted field is followed by characters other than a delimiter',
  INVALID_OPENING_QUOTE: 'a quote appears inside an unquoted field',
};

/** Checks the header and returns each column's position. Throws RosterFileError for the whole file. */
export function readRosterHeader(names: readonly string[]): Map<RosterColumn, number> {
  const known = new Set<string>(ROSTER_CSV_COLUMNS);
  const trimmed = names.map((n) => n.trim());
  if (!trimmed.some((n) => known.has(n))) {
    // Naming the "columns" here could print a data row (a roster without its header): say nothing about them.
    throw new RosterFileError(`the first line is not a roster header: expected the columns ${ROSTER_CSV_COLUMNS.join(', ')}`, 1);
  }
  const positions = new Map<RosterColumn, number>();
  trimmed.forEach((name, index) => {
    if (!known.has(name)) {
      throw new RosterFileError(
        `unknown column ${JSON.stringify(name.slice(0, 64))} in the header; the columns are ${ROSTER_CSV_COLUMNS.join(', ')}`,
        1,
      );
    }
    if (positions.has(name as RosterColumn)) throw new RosterFileError(`column "${name}" appears twice in the header`, 1);
    positions.set(name as RosterColumn, index);
  });
  const missing = REQUIRED_ROSTER_COLUMNS.filter((c) => !positions.has(c));
  if (missing.length > 0) throw new RosterFileError(`the header lacks the required column(s) ${missing.join(', ')}`, 1);
  return positions;
}

function countNewlines(fields: readonly string[]): number {
  let n = 0;
  for (const field of fields) {
    for (let i = field.indexOf('\n'); i !== -1; i = field.indexOf('\n', i + 1)) n++;
  }
  return n;
}

/**
 * Streams a roster CSV: checks the header (throwing RosterFileError for the whole file), then yields each
 * data row with the physical line it starts on (the header is line 1; quoted fields may span lines). Blank
 * lines and rows of empty fields are skipped. A row with the wrong number of fields is yielded as a reason.
 * Broken CSV syntax (an unclosed quote, text after a closing quote) cannot be resynchronised: after yielding
 * every row before it, the reader throws RosterFileError naming the line.
 */
export async function* readRosterCsv(input: Readable): AsyncGenerator<CsvRosterEvent, void, undefined> {
  /** The first syntax error: its code, how many records preceded it, and how many empty lines were seen. */
  let syntaxError: { code: string; records: number; emptyLines: number | undefined } | undefined;
  const parser = parse({
    info: true,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    record_delimiter: ['\r\n', '\n'],
    max_record_size: MAX_RECORD_BYTES,
    // Records already parsed ahead must still be seen before the error is raised, so errors are captured here
    // rather than thrown into the iterator (which would drop the buffered records).
    skip_records_with_error: true,
    on_skip: (error) => {
      if (!syntaxError && error) {
        syntaxError = {
          code: error.code,
          records: typeof error.records === 'number' ? error.records : 0,
          emptyLines: typeof error.empty_lines === 'number' ? error.empty_lines : undefined,
        };
        input.unpipe(parser);
        parser.end();
      }
      return undefined;
    },
  });
  const forwardError = (error: Error) => parser.destroy(error);
  input.on('error', forwardError);
  input.pipe(parser);

  let positions: Map<RosterColumn, number> | undefined;
  let headerLength = 0;
  let consumed = 0;
  let previousEndLine = 0;
  let previousEmptyLines = 0;

  const syntaxFailure = (error: NonNullable<typeof syntaxError>): RosterFileError => {
    const empty = error.emptyLines ?? previousEmptyLines;
    const line = previousEndLine + 1 + Math.max(0, empty - previousEmptyLines);
    const what = CSV_ERROR_TEXT[error.code] ?? `unreadable CSV (${error.code})`;
    return new RosterFileError(`malformed CSV at line ${line}: ${what}; rows after it were not read`, line);
  };

  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      if (syntaxError && consumed >= syntaxError.records) throw syntaxFailure(syntaxError);
      consumed++;
      const { record, info } = item;
      const line = previousEndLine + 1 + (info.empty_lines - previousEmptyLines);
      previousEndLine = line + countNewlines(record);
      previousEmptyLines = info.empty_lines;

      if (!positions) {
        positions = readRosterHeader(record);
        headerLength = record.length;
        continue;
      }
      if (record.every((field) => field.trim() === '')) continue;
      if (record.length !== headerLength) {
        yield { line, reason: `expected ${headerLength} fields, found ${record.length}` };
        continue;
      }
      const fields: RosterFields = {};
      for (const [column, index] of positions) fields[column] = record[index];
      yield { line, fields };
    }
    if (syntaxError) throw syntaxFailure(syntaxError);
    if (!positions) throw new RosterFileError('the file is empty: expected a header line', 1);
  } finally {
    input.off('error', forwardError);
    input.unpipe(parser);
    if (!parser.destroyed) parser.destroy();
    if (!input.destroyed) input.destroy();
  }
}

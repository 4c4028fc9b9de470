import type { Readable } from 'node:stream';
import { parse, type Info } from 'csv-parse';
import { parseIsoDate } from '../matching/normalize.js';
import type { CoverageRecord, MemberRecord } from './member-repository.js';
import type { ImportSummary } from './roster-import.js';

/**
 * The roster CSV reader and the row validation shared by the CSV and NDJSON importers. The file format is
 * documented at the top of `roster-import.ts`.
 *
 * Validation reasons are fixed texts naming a column and a rule, never a value: they end up in logs and CLI
 * output, where names, birth dates and identifiers must not appear.
 */

export const ROSTER_CSV_COLUMNS = [
  'member_id',
  'subscriber_id',
  'relationship',
  'given',
  'middle',
  'family',
  'suffix',
  'birth_date',
  'gender',
  'address_line',
  'city',
  'state',
  'postal_code',
  'phone',
  'email',
  'coverage_id',
  'group',
  'plan',
  'period_start',
  'period_end',
  'sharing',
] as const;

export type RosterColumn = (typeof ROSTER_CSV_COLUMNS)[number];

/** The columns every roster writer fills (the optional consent-registry column `sharing` left out). */
export const ROSTER_DATA_COLUMNS = ROSTER_CSV_COLUMNS.filter((c) => c !== 'sharing') as Exclude<RosterColumn, 'sharing'>[];
export type RosterDataColumn = Exclude<RosterColumn, 'sharing'>;

/** Columns the header must have (and every row must fill). */
export const REQUIRED_ROSTER_COLUMNS: readonly RosterColumn[] = ['member_id', 'given', 'family', 'birth_date', 'coverage_id'];

/** Raw (untrimmed) values of one row by column; absent columns are undefined. */
export type RosterFields = Partial<Record<RosterColumn, string>>;

/** How reasons name a field: the CSV column by default; the NDJSON importer passes FHIR paths. */
export type FieldLabels = Partial<Record<RosterColumn, string>>;

export const GENDER_CODES = ['male', 'female', 'other', 'unknown'] as const;
/** http://terminology.hl7.org/CodeSystem/subscriber-relationship */
export const RELATIONSHIP_CODES = ['self', 'spouse', 'child', 'parent', 'common', 'injured', 'other'] as const;

/** Longest accepted value of any field. */
export const MAX_FIELD_LENGTH = 256;
/** Longest accepted CSV record: a runaway quoted field fails fast instead of buffering the file. */
const MAX_RECORD_BYTES = 64 * 1024;

/**
 * The file is refused (bad header, unreadable CSV or gzip). `line` is set when a line is to blame. When the
 * import stopped part-way, `summary` counts the rows written before the failure.
 */
export class RosterFileError extends Error {
  summary: ImportSummary | undefined;
  constructor(
    message: string,
    readonly line?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RosterFileError';
  }
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; reasons: string[] };

/** The latest calendar date anywhere on Earth (UTC+14): a birth "today" is never in the future. */
function latestToday(): string {
  return new Date(Date.now() + 14 * 3_600_000).toISOString().slice(0, 10);
}

class FieldReader {
  readonly reasons: string[] = [];
  constructor(
    private readonly fields: RosterFields,
    private readonly labels: FieldLabels,
  ) {}

  label(column: RosterColumn): string {
    return this.labels[column] ?? column;
  }

  /** Trimmed value, or null when absent or blank. */
  optional(column: RosterColumn): string | null {
    const value = this.fields[column]?.trim();
    if (!value) return null;
    if (value.length > MAX_FIELD_LENGTH) {
      this.reasons.push(`${this.label(column)} is too long (more than ${MAX_FIELD_LENGTH} characters)`);
      return null;
    }
    return value;
  }

  required(column: RosterColumn): string {
    const value = this.optional(column);
    if (value === null && !this.reasons.some((r) => r.startsWith(`${this.label(column)} `))) {
      this.reasons.push(`missing ${this.label(column)}`);
    }
    return value ?? '';
  }

  date(column: RosterColumn, value: string | null): string | null {
    if (value === null) return null;
    const date = parseIsoDate(value);
    if (!date) {
      this.reasons.push(`${this.label(column)} is not a valid date (expected YYYY-MM-DD)`);
      return null;
    }
    return date;
  }

  code<T extends string>(column: RosterColumn, allowed: readonly T[], what: string): T | null {
    const value = this.optional(column)?.toLowerCase() ?? null;
    if (value === null) return null;
    if (!(allowed as readonly string[]).includes(value)) {
      this.reasons.push(`${this.label(column)} must be ${what} (${allowed.join(', ')})`);
      return null;
    }
    return value as T;
  }
}

/** Validates and normalises the member part of a row (member_id … email). */
export function validateMemberFields(fields: RosterFields, labels: FieldLabels = {}): ValidationResult<MemberRecord> {
  const r = new FieldReader(fields, labels);
  const memberId = r.required('member_id');
  const given = r.required('given');
  const family = r.required('family');
  const birthText = r.required('birth_date');
  const birthDate = birthText ? r.date('birth_date', birthText) : null;
  if (birthDate && birthDate > latestToday()) r.reasons.push(`${r.label('birth_date')} is in the future`);
  const gender = r.code('gender', GENDER_CODES, 'an administrative gender code');
  const member: MemberRecord = {
    memberId,
    sourceResourceId: null,
    given,
    middle: r.optional('middle'),
    family,
    suffix: r.optional('suffix'),
    birthDate: birthDate ?? '',
    gender,
    addressLine: r.optional('address_line'),
    city: r.optional('city'),
    state: r.optional('state')?.toUpperCase() ?? null,
    postalCode: r.optional('postal_code'),
    phone: r.optional('phone'),
    email: r.optional('email'),
  };
  return r.reasons.length > 0 ? { ok: false, reasons: r.reasons } : { ok: true, value: member };
}

/** Validates and normalises the coverage part of a row (coverage_id, subscriber_id, relationship, group, plan, period). */
export function validateCoverageFields(fields: RosterFields, labels: FieldLabels = {}): ValidationResult<CoverageRecord> {
  const r = new FieldReader(fields, labels);
  const coverageId = r.required('coverage_id');
  const relationship = r.code('relationship', RELATIONSHIP_CODES, 'a subscriber-relationship code');
  const periodStart = r.date('period_start', r.optional('period_start'));
  const periodEnd = r.date('period_end', r.optional('period_end'));
  if (periodStart && periodEnd && periodStart > periodEnd) {
    r.reasons.push(`${r.label('period_start')} is after ${r.label('period_end')}`);
  }
  const coverage: CoverageRecord = {
    coverageId,
    subscriberId: r.optional('subscriber_id'),
    relationship,
    groupId: r.optional('group'),
    planId: r.optional('plan'),
    periodStart,
    periodEnd,
  };
  return r.reasons.length > 0 ? { ok: false, reasons: r.reasons } : { ok: true, value: coverage };
}

/** The optional `sharing` column: a member's own opt-out from payer-to-payer exchange (the consent registry). */
export const SHARING_CODES = ['opted-out', 'revoked'] as const;
export type SharingCode = (typeof SHARING_CODES)[number];

export type RosterRowResult =
  | { ok: true; member: MemberRecord; coverage: CoverageRecord; sharing: SharingCode | null }
  | { ok: false; reason: string };

/** Validates one CSV row: a member and one of its coverages. All problems are reported, joined by `; `. */
export function validateRosterRow(fields: RosterFields): RosterRowResult {
  const member = validateMemberFields(fields);
  const coverage = validateCoverageFields(fields);
  const sharingReader = new FieldReader(fields, {});
  const sharing = sharingReader.code('sharing', SHARING_CODES, 'a sharing opt-out code');
  if (member.ok && coverage.ok && sharingReader.reasons.length === 0) return { ok: true, member: member.value, coverage: coverage.value, sharing };
  const reasons = [...(member.ok ? [] : member.reasons), ...(coverage.ok ? [] : coverage.reasons), ...sharingReader.reasons];
  return { ok: false, reason: reasons.join('; ') };
}

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

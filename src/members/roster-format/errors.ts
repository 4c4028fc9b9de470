/** How a roster import went (rows read, written, rejected), and the error that refuses a roster file. */

export interface ImportError {
  /** Physical line in the file (the CSV header is line 1). */
  line: number;
  /** What is wrong, without any of the row's values. */
  reason: string;
}

export interface ImportSummary {
  rows: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  /** The first MAX_REPORTED_ERRORS rejections, by line. */
  errors: ImportError[];
}

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

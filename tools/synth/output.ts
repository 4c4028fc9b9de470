import { createWriteStream, type WriteStream } from 'node:fs';
import { ROSTER_DATA_COLUMNS as ROSTER_CSV_COLUMNS, type RosterDataColumn as RosterColumn } from '../../src/members/roster-format/columns.js';

/**
 * Writing the three evaluation files: CSV quoting and a buffered, back-pressured file writer. Shared by the
 * synthetic generator and the FEBRL converter so both produce byte-for-byte the same format.
 */

/** RFC 4180 quoting, only where needed (a comma, quote, line break, or edge whitespace that trimming would eat). */
export function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(values: readonly string[]): string {
  return `${values.map(csvField).join(',')}\n`;
}

export const ROSTER_HEADER = csvLine(ROSTER_CSV_COLUMNS);
export const TRUTH_HEADER = csvLine(['query_id', 'member_id', 'hazard']);

export function rosterLine(row: Record<RosterColumn, string>): string {
  return csvLine(ROSTER_CSV_COLUMNS.map((column) => row[column]));
}

/**
 * Collects text and writes it in chunks of about 256 KiB, waiting for each chunk to be accepted: memory stays
 * flat however many rows pass through.
 */
export class ChunkedFileWriter {
  private readonly stream: WriteStream;
  private parts: string[] = [];
  private size = 0;

  constructor(path: string) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
  }

  /** Queues text; returns a promise only when a chunk is being flushed (await it). */
  write(text: string): Promise<void> | undefined {
    this.parts.push(text);
    this.size += text.length;
    return this.size >= 256 * 1024 ? this.flush() : undefined;
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    await new Promise<void>((resolve, reject) => this.stream.write(chunk, (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}

/**
 * List output: a header line, then one row per item, columns aligned (two spaces apart). An empty list still
 * prints its header, so "nothing" is distinguishable from "the command printed nothing".
 */
export function formatTable(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [header.map(String), ...rows.map((row) => row.map(cell))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function printTable(header: readonly string[], rows: readonly (readonly unknown[])[]): void {
  console.log(formatTable(header, rows));
}

function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

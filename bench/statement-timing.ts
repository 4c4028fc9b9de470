/**
 * Client-side statement timing for the benches (pg_stat_statements needs `shared_preload_libraries`, which a
 * shared Postgres cannot be restarted for): wraps pg's Client#query and sums the wall time of each statement by
 * its first words, so a bench can print where its time in Postgres goes. The time includes the round trip.
 */
import pg from 'pg';

const totals = new Map<string, { calls: number; ms: number }>();

function label(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/\$\d+/g, '?').slice(0, 90);
}

export function timeStatements(): void {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text;
    const result = original.apply(this, args);
    if (text && result && typeof (result as Promise<unknown>).then === 'function') {
      const started = performance.now();
      const done = () => {
        const key = label(text);
        const entry = totals.get(key) ?? { calls: 0, ms: 0 };
        entry.calls++;
        entry.ms += performance.now() - started;
        totals.set(key, entry);
      };
      (result as Promise<unknown>).then(done, done);
    }
    return result;
  } as typeof pg.Client.prototype.query;
}

export function printStatementTimes(top = 15): void {
  const rows = [...totals].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
  console.log('statements by wall time (client side, round trip included):');
  for (const [text, { calls, ms }] of rows) console.log(`  ${(ms / 1000).toFixed(2).padStart(8)} s ${String(calls).padStart(7)} calls  ${text}`);
  totals.clear();
}

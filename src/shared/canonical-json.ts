/**
 * JSON with object keys sorted at every depth: jsonb does not keep key order, the hash must not care. Keys whose
 * value is undefined are left out, as JSON.stringify leaves them out.
 *
 * Written as loops that append to one string: every audit event is hashed through it on the request path, and
 * the `entries`/`filter`/`sort`/`map` chain it replaced was 4 % of the API's CPU at 1 M members (docs/benchmarks.md). The output
 * is byte for byte the same (test/canonical-json.test.ts): `sort()` without a comparator orders keys by UTF-16
 * code units, as the `<` comparison did.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
    first = false;
  }
  return `${out}}`;
}

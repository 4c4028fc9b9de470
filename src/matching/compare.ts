/**
 * The string and date primitives the field comparisons (comparisons.ts) are built from: Jaro–Winkler,
 * edit distance one, single-position differences.
 */
import jaroWinklerSimilarity from 'talisman/metrics/jaro-winkler.js';

/** Jaro–Winkler similarity threshold of the `jw-high` level. */
export const JW_HIGH = 0.92;
/** Jaro–Winkler threshold of the weaker `similar` name level. */
export const JW_SIMILAR = 0.85;

/**
 * Jaro–Winkler similarity (talisman; prefix scale 0.1, boost threshold 0.7) in [0, 1]. The arguments are put
 * in a fixed order first, so the result is symmetric even where Jaro's greedy matching is not.
 */
export function jaroWinkler(a: string, b: string): number {
  return a <= b ? jaroWinklerSimilarity(a, b) : jaroWinklerSimilarity(b, a);
}

export function intersects(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === 0 || b.length === 0) return false;
  for (const x of a) if (b.includes(x)) return true;
  return false;
}

/**
 * Damerau–Levenshtein distance exactly 1 (optimal string alignment): one insertion, deletion, substitution,
 * or transposition of adjacent letters. Linear: walks the common prefix and compares the rest.
 */
export function oneEditApart(x: string, y: string): boolean {
  if (x === y || Math.abs(x.length - y.length) > 1) return false;
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  if (x.length === y.length) {
    if (x.slice(i + 1) === y.slice(i + 1)) return true; // substitution
    return x[i] === y[i + 1] && x[i + 1] === y[i] && x.slice(i + 2) === y.slice(i + 2); // transposition
  }
  return x.length > y.length ? x.slice(i + 1) === y.slice(i) : x.slice(i) === y.slice(i + 1); // deletion / insertion
}

/**
 * Damerau–Levenshtein (optimal string alignment) distance at most 2, with a band of 2 around the diagonal:
 * O(n) rather than the full O(n·m) table, since it runs for names that already failed the cheaper levels.
 */
export function withinTwoEdits(x: string, y: string): boolean {
  if (Math.abs(x.length - y.length) > 2) return false;
  const n = x.length;
  const m = y.length;
  const far = 3;
  let before = new Array<number>(m + 1).fill(far);
  let previous = Array.from({ length: m + 1 }, (_, j) => (j <= 2 ? j : far));
  for (let i = 1; i <= n; i++) {
    const current = new Array<number>(m + 1).fill(far);
    if (i <= 2) current[0] = i;
    let best = current[0]!;
    for (let j = Math.max(1, i - 2); j <= Math.min(m, i + 2); j++) {
      const cost = x.charCodeAt(i - 1) === y.charCodeAt(j - 1) ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      current[j] = Math.min(d, far);
      if (current[j]! < best) best = current[j]!;
    }
    if (best >= far) return false;
    before = previous;
    previous = current;
  }
  return previous[m]! <= 2;
}

/** The one position at which two equal-length strings differ, or -1 (none, several, or unequal lengths). */
export function onlyDifference(x: string, y: string): number {
  if (x.length !== y.length) return -1;
  let at = -1;
  for (let i = 0; i < x.length; i++) {
    if (x.charCodeAt(i) !== y.charCodeAt(i)) {
      if (at !== -1) return -1;
      at = i;
    }
  }
  return at;
}

/** Equal but for two adjacent characters exchanged (`1234` / `1324`). */
export function adjacentSwap(x: string, y: string): boolean {
  if (x.length !== y.length) return false;
  let i = 0;
  while (i < x.length && x[i] === y[i]) i++;
  return i < x.length - 1 && x[i] === y[i + 1] && x[i + 1] === y[i] && x.slice(i + 2) === y.slice(i + 2);
}

/** `YYYY-MM-DD`: positions 0–2 are the century and decade. A typo there moves a date by 10+ years. */
export const FIRST_NON_DECADE_POSITION = 3;


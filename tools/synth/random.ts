/**
 * The seeded randomness behind the synthetic data. Everything the generator draws comes from here, never from
 * Math.random, so one seed always writes the same bytes.
 *
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator) passes PractRand well past what we draw, is four
 * 32-bit words of state and needs nothing but integer arithmetic. Its state is expanded from the seed with
 * splitmix32, and independent streams (population, query plan, perturbations) are split off by label, so adding
 * draws to one stream never shifts the others.
 */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** A uniformly chosen element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** A new generator whose sequence depends on this one's seed and the label, not on how much was drawn. */
  fork(label: string): Rng;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a of a label, to turn stream names into seed material. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function createRng(seed: number | string): Rng {
  const seedWord = typeof seed === 'number' ? (seed >>> 0) ^ Math.floor(seed / 2 ** 32) : hashLabel(seed);
  const expand = splitmix32(seedWord);
  let a = expand();
  let b = expand();
  let c = expand();
  let d = expand();

  const nextWord = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  // Discard the first outputs: sfc32 mixes a fresh state within a dozen rounds.
  for (let i = 0; i < 15; i++) nextWord();

  const rng: Rng = {
    next: () => nextWord() / 4294967296,
    int: (min, max) => min + Math.floor((nextWord() / 4294967296) * (max - min + 1)),
    chance: (p) => nextWord() / 4294967296 < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor((nextWord() / 4294967296) * items.length)] as T;
    },
    fork: (label) => createRng(`${seedWord}:${label}`),
  };
  return rng;
}

/**
 * Draws items with given weights in O(log n) by binary search over the cumulative weights. Built once per list;
 * the lists are static, so the cost is paid at module load, not per member.
 */
export interface WeightedSampler<T> {
  readonly items: readonly T[];
  sample(rng: Rng): T;
}

export function weightedSampler<T>(items: readonly T[], weights: readonly number[]): WeightedSampler<T> {
  if (items.length === 0 || items.length !== weights.length) throw new Error('weightedSampler needs one weight per item');
  const cumulative = new Float64Array(items.length);
  let total = 0;
  weights.forEach((w, i) => {
    total += Math.max(0, w);
    cumulative[i] = total;
  });
  return {
    items,
    sample(rng) {
      const target = rng.next() * total;
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((cumulative[mid] as number) > target) hi = mid;
        else lo = mid + 1;
      }
      return items[lo] as T;
    },
  };
}

/** Chooses one of several labelled outcomes by weight, e.g. `choose(rng, { self: 3, spouse: 1 })`. */
export function choose<K extends string>(rng: Rng, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as [K, number][];
  let total = 0;
  for (const [, w] of entries) total += w;
  let target = rng.next() * total;
  for (const [key, w] of entries) {
    target -= w;
    if (target < 0) return key;
  }
  return (entries[entries.length - 1] as [K, number])[0];
}

/** Fisher–Yates, in place. */
export function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/**
 * `count` distinct integers from [0, n), in random order (Floyd's algorithm: memory grows with count, not n).
 * When count exceeds n every integer is used and the rest repeat.
 */
export function sampleDistinct(rng: Rng, n: number, count: number): number[] {
  if (n <= 0) return [];
  const out: number[] = [];
  while (count - out.length >= n) {
    out.push(...shuffle(rng, Array.from({ length: n }, (_, i) => i)));
  }
  const need = count - out.length;
  const chosen = new Set<number>();
  for (let j = n - need; j < n; j++) {
    const t = rng.int(0, j);
    chosen.add(chosen.has(t) ? j : t);
  }
  out.push(...shuffle(rng, [...chosen]));
  return out;
}

/**
 * Normalisation shared by roster import (which stores the keys) and resolution (which compares them), so a
 * name is folded the same way on both sides.
 */

/** Unicode-folds a name: NFKD, combining marks removed, upper case, letters only (spaces, hyphens and
 * apostrophes dropped), so `O'Brien-Núñez` and `OBRIEN NUNEZ` give the same key. */
export function nameKey(name: string | undefined | null): string {
  if (!name) return '';
  return name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toUpperCase()
    .replace(/[^A-Z]/g, '');
}

/** The key of a person's first given name: the first whitespace-separated token of the given names. */
export function givenNameKey(given: string | undefined | null): string {
  if (!given) return '';
  const first = given.normalize('NFKC').trim().split(/\s+/)[0];
  return nameKey(first);
}

const isoDate = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar date written `YYYY-MM-DD`, or undefined. Rejects 2023-02-30 and friends. */
export function parseIsoDate(text: string | undefined | null): string | undefined {
  if (!text) return undefined;
  const m = isoDate.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined;
  }
  return m[0];
}

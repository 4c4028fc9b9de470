import type { Rng } from './random.js';

/**
 * Calendar arithmetic for the synthetic world. "Today" is fixed (REFERENCE_DATE), not the clock: a generator
 * run next year must write the same files, and no birth date may ever be in the future for the roster import.
 */

export const REFERENCE_DATE = '2025-01-01';
export const REFERENCE_YEAR = 2025;
const DAY_MS = 86_400_000;
const REFERENCE_DAY = Date.UTC(2025, 0, 1) / DAY_MS;

/** Days since 1970-01-01 (UTC) of an ISO date. */
export function dayNumber(iso: string): number {
  return Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10))) / DAY_MS;
}

export function isoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export function yearOf(iso: string): number {
  return Number(iso.slice(0, 4));
}

/** Whole years of age on REFERENCE_DATE. */
export function ageOf(birthDate: string): number {
  const year = yearOf(birthDate);
  // Everyone born before the reference day of their birth year has had a birthday: REFERENCE_DATE is 1 January.
  return REFERENCE_YEAR - year - (birthDate.slice(5) === '01-01' ? 0 : 1);
}

/** A uniformly random day of the year, never after the day before REFERENCE_DATE. */
export function randomDateInYear(rng: Rng, year: number): string {
  const first = Date.UTC(year, 0, 1) / DAY_MS;
  const last = Math.min(Date.UTC(year, 11, 31) / DAY_MS, REFERENCE_DAY - 1);
  return isoDate(rng.int(first, Math.max(first, last)));
}

/** A real calendar date in YYYY-MM-DD, or false (mirrors the importer's parseIsoDate). */
export function isValidIsoDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** Not after the day before REFERENCE_DATE and not before 1900: what a plausible birth date must be. */
export function isPlausibleBirthDate(iso: string): boolean {
  return isValidIsoDate(iso) && iso < REFERENCE_DATE && iso >= '1900-01-01';
}

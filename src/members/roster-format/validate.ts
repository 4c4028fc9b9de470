import { parseIsoDate } from '../../matching/normalize.js';
import type { CoverageRecord, MemberRecord } from '../member-repository.js';
import { GENDER_CODES, MAX_FIELD_LENGTH, RELATIONSHIP_CODES, SHARING_CODES, type FieldLabels, type RosterColumn, type RosterFields, type SharingCode } from './columns.js';

/**
 * Row validation shared by the CSV and NDJSON readers.
 *
 * Validation reasons are fixed texts naming a column and a rule, never a value: they end up in logs and CLI
 * output, where names, birth dates and identifiers must not appear.
 */

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

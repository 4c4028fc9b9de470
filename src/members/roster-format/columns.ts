/**
 * The roster's columns and field vocabularies, shared by the CSV and NDJSON readers and the validators.
 * The file format: docs/roster-format.md.
 */

export const ROSTER_CSV_COLUMNS = [
  'member_id',
  'subscriber_id',
  'relationship',
  'given',
  'middle',
  'family',
  'suffix',
  'birth_date',
  'gender',
  'address_line',
  'city',
  'state',
  'postal_code',
  'phone',
  'email',
  'coverage_id',
  'group',
  'plan',
  'period_start',
  'period_end',
  'sharing',
] as const;

export type RosterColumn = (typeof ROSTER_CSV_COLUMNS)[number];

/** The columns every roster writer fills (the optional consent-registry column `sharing` left out). */
export const ROSTER_DATA_COLUMNS = ROSTER_CSV_COLUMNS.filter((c) => c !== 'sharing') as Exclude<RosterColumn, 'sharing'>[];
export type RosterDataColumn = Exclude<RosterColumn, 'sharing'>;

/** Columns the header must have (and every row must fill). */
export const REQUIRED_ROSTER_COLUMNS: readonly RosterColumn[] = ['member_id', 'given', 'family', 'birth_date', 'coverage_id'];

/** Raw (untrimmed) values of one row by column; absent columns are undefined. */
export type RosterFields = Partial<Record<RosterColumn, string>>;

/** How reasons name a field: the CSV column by default; the NDJSON importer passes FHIR paths. */
export type FieldLabels = Partial<Record<RosterColumn, string>>;

export const GENDER_CODES = ['male', 'female', 'other', 'unknown'] as const;
/** http://terminology.hl7.org/CodeSystem/subscriber-relationship */
export const RELATIONSHIP_CODES = ['self', 'spouse', 'child', 'parent', 'common', 'injured', 'other'] as const;

/** Longest accepted value of any field. */
export const MAX_FIELD_LENGTH = 256;

/** The optional `sharing` column: a member's own opt-out from payer-to-payer exchange (the consent registry). */
export const SHARING_CODES = ['opted-out', 'revoked'] as const;
export type SharingCode = (typeof SHARING_CODES)[number];

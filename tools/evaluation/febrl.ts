import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse';
import type { RosterDataColumn as RosterColumn } from '../../src/members/roster-format/columns.js';
import { validateRosterRow } from '../../src/members/roster-format/validate.js';
import { memberMatchParameters } from '../synth/fhir.js';
import type { QueryPerson } from '../synth/hazards.js';
import { queryLine, truthLine, type TruthRow } from '../synth/index.js';
import { ChunkedFileWriter, ROSTER_HEADER, rosterLine, TRUTH_HEADER } from '../synth/output.js';
import { createRng } from '../synth/random.js';

/**
 * Converts a FEBRL data set (Christen's Freely Extensible Biomedical Record Linkage generator; see
 * fixtures/febrl3.LICENSE.md) into the three evaluation files the synthetic generator writes:
 *
 * - `roster.csv`: one row per original record (`rec-N-org`), member id `rec-N`, coverage `cov-N`,
 *   relationship self, no gender (FEBRL has none), the SSN-like `soc_sec_id` as subscriber id.
 * - `queries.ndjson`: one `$member-match` request per duplicate (`rec-N-dup-k`), built from the duplicate's own
 *   fields. The card's subscriber id is the duplicate's own `soc_sec_id` — FEBRL corrupts it like any other
 *   field (a digit substituted, two transposed), so it is evidence, not a key — and its member id field (MB)
 *   one we never issued, as when a partner copies a number we cannot place. This mirrors how a new payer sends
 *   the old card. `identifier: false` keeps `soc_sec_id` out of the request (the card then carries only the
 *   never-issued id), for measuring demographics alone. Gender is `unknown` (HRex requires one).
 * - `truth.csv`: each query's original (`rec-N`); the hazard column lists which fields of the duplicate differ
 *   from its original (`given-differs+dob-differs`), or `exact`.
 *
 * FEBRL has no non-members: every duplicate has its original in the file. `holdOut` (a fraction, seeded) leaves
 * that share of originals out of the roster, so their duplicates become queries for people who are not our
 * members (truth names no member) — the issue-12 held-out set has about 20 % of those.
 *
 * Records the importer or the request parser cannot take are skipped and counted, never patched with
 * placeholders: an original without a given name, family name or valid birth date cannot be imported (and
 * its duplicates then have no member to find), a duplicate without them cannot be sent (the parser requires a
 * family and a given name and a full birth date).
 */

interface FebrlRecord {
  id: string;
  given: string;
  surname: string;
  streetNumber: string;
  address1: string;
  address2: string;
  suburb: string;
  postcode: string;
  state: string;
  dateOfBirth: string;
  socSecId: string;
}

export interface FebrlSummary {
  /** Roster rows written (originals that import). */
  index: number;
  /** Queries written (duplicates that parse and whose original is in the index or held out). */
  queries: number;
  /** Of those, queries for held-out originals: people who are not our members. */
  nonMemberQueries: number;
  /** Records left out, originals and duplicates together. */
  skipped: number;
  /** Why records were left out, by reason. */
  skippedBy: Record<string, number>;
}

/** YYYYMMDD → YYYY-MM-DD when it is a real calendar date, else undefined. */
export function febrlDate(text: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  return `${m[1]}-${m[2]}-${m[3]}`;
}

/** `7 wallaby place, delmar`: FEBRL's street number, street and locality as one address line. */
function addressLine(r: FebrlRecord): string {
  const street = [r.streetNumber, r.address1].filter(Boolean).join(' ');
  return [street, r.address2].filter(Boolean).join(', ');
}

async function readFebrl(csvPath: string): Promise<FebrlRecord[]> {
  const records: FebrlRecord[] = [];
  // FEBRL writes ", " between fields: trim drops the space (no value starts or ends with a meaningful one).
  const parser = createReadStream(csvPath).pipe(parse({ columns: true, trim: true, skip_empty_lines: true, bom: true }));
  for await (const row of parser as AsyncIterable<Record<string, string>>) {
    records.push({
      id: row.rec_id ?? '',
      given: row.given_name ?? '',
      surname: row.surname ?? '',
      streetNumber: row.street_number ?? '',
      address1: row.address_1 ?? '',
      address2: row.address_2 ?? '',
      suburb: row.suburb ?? '',
      postcode: row.postcode ?? '',
      state: row.state ?? '',
      dateOfBirth: row.date_of_birth ?? '',
      socSecId: row.soc_sec_id ?? '',
    });
  }
  return records;
}

function rosterRow(r: FebrlRecord, memberId: string): Record<RosterColumn, string> {
  const n = memberId.slice('rec-'.length);
  return {
    member_id: memberId,
    subscriber_id: r.socSecId || memberId,
    relationship: 'self',
    given: r.given,
    middle: '',
    family: r.surname,
    suffix: '',
    birth_date: febrlDate(r.dateOfBirth) ?? r.dateOfBirth,
    gender: '',
    address_line: addressLine(r),
    city: r.suburb,
    // Australian state codes are kept: the roster format does not restrict state to US codes.
    state: r.state.toUpperCase(),
    postal_code: r.postcode,
    phone: '',
    email: '',
    coverage_id: `cov-${n}`,
    group: '',
    plan: '',
    period_start: '',
    period_end: '',
  };
}

/** Which fields of a duplicate differ from its original, for the truth file's hazard column. */
function differences(dup: FebrlRecord, org: FebrlRecord): string {
  const fields: [string, string, string][] = [
    ['given', dup.given, org.given],
    ['family', dup.surname, org.surname],
    ['dob', dup.dateOfBirth, org.dateOfBirth],
    ['address', addressLine(dup), addressLine(org)],
    ['city', dup.suburb, org.suburb],
    ['postcode', dup.postcode, org.postcode],
    ['state', dup.state, org.state],
  ];
  const tags = fields.flatMap(([name, a, b]) => (a === b ? [] : [!a ? `missing-${name}` : `${name}-differs`]));
  return tags.length > 0 ? tags.join('+') : 'exact';
}

/** How the duplicate's `soc_sec_id` differs from its original's, for the hazard column (only when it is sent). */
function identifierDifference(dup: FebrlRecord, org: FebrlRecord): string {
  if (dup.socSecId === org.socSecId) return 'id-exact';
  if (!dup.socSecId) return 'missing-id';
  return 'id-differs';
}

function count(map: Record<string, number>, reason: string): void {
  map[reason] = (map[reason] ?? 0) + 1;
}

export interface FebrlOptions {
  /** Send each duplicate's `soc_sec_id` as the card's subscriber id (default true). */
  identifier?: boolean;
  /** Share of originals left out of the roster, their duplicates becoming non-member queries (default 0). */
  holdOut?: number;
}

export async function febrlToEvaluationFiles(csvPath: string, outDir: string, options: FebrlOptions = {}): Promise<FebrlSummary> {
  const sendIdentifier = options.identifier ?? true;
  const holdOut = options.holdOut ?? 0;
  if (!(holdOut >= 0 && holdOut < 1)) throw new Error('holdOut must be a fraction in [0, 1)');
  const records = await readFebrl(csvPath);
  // Its own stream, so the card ids below are the same whether or not originals are held out.
  const holdOutRng = createRng('febrl-hold-out');
  const heldOut = new Map<string, FebrlRecord>();
  const skippedBy: Record<string, number> = {};
  await mkdir(outDir, { recursive: true });

  // Originals first: duplicates come before their original in the file, and need it for truth.
  const originals = new Map<string, FebrlRecord>();
  const roster = new ChunkedFileWriter(path.join(outDir, 'roster.csv'));
  let index = 0;
  try {
    await roster.write(ROSTER_HEADER);
    for (const r of records) {
      const m = /^(rec-\d+)-org$/.exec(r.id);
      if (!m) continue;
      const row = rosterRow(r, m[1] as string);
      // The importer's own validation decides, so the roster imports with no rejected row.
      if (!validateRosterRow(row).ok) {
        count(skippedBy, 'original-not-importable');
        continue;
      }
      if (holdOut > 0 && holdOutRng.chance(holdOut)) {
        heldOut.set(m[1] as string, r);
        continue;
      }
      originals.set(m[1] as string, r);
      await roster.write(rosterLine(row));
      index++;
    }
  } finally {
    await roster.close();
  }

  const queries = new ChunkedFileWriter(path.join(outDir, 'queries.ndjson'));
  const truth = new ChunkedFileWriter(path.join(outDir, 'truth.csv'));
  // Card ids that are surely not ours (member ids here are `rec-N`); seeded so the files are reproducible.
  const rng = createRng('febrl-cards');
  let written = 0;
  let nonMemberQueries = 0;
  try {
    await truth.write(TRUTH_HEADER);
    for (const r of records) {
      const m = /^(rec-\d+)-dup-\d+$/.exec(r.id);
      if (!m) {
        if (!r.id.endsWith('-org')) count(skippedBy, 'unrecognised-id');
        continue;
      }
      const original = originals.get(m[1] as string) ?? heldOut.get(m[1] as string);
      const isMember = originals.has(m[1] as string);
      const birthDate = febrlDate(r.dateOfBirth);
      if (!original) {
        count(skippedBy, 'duplicate-of-skipped-original');
        continue;
      }
      if (!r.given || !r.surname) {
        count(skippedBy, 'duplicate-without-name');
        continue;
      }
      if (!birthDate) {
        count(skippedBy, 'duplicate-without-valid-birth-date');
        continue;
      }
      const person: QueryPerson = {
        given: r.given,
        middle: [],
        family: r.surname,
        suffix: null,
        birthDate,
        gender: 'unknown',
        address: { line: addressLine(r), city: r.suburb, state: r.state.toUpperCase(), postalCode: r.postcode },
        phone: null,
        email: null,
      };
      const id = `q${String(written + 1).padStart(7, '0')}`;
      const card = {
        identifier: `F${String(rng.int(0, 999_999_999)).padStart(9, '0')}`,
        subscriberId: sendIdentifier && r.socSecId ? r.socSecId : undefined,
      };
      const parameters = memberMatchParameters(person, card, `NP${String(written + 1).padStart(8, '0')}`);
      const hazard = [...(isMember ? [] : ['nonmember-held-out']), differences(r, original), ...(sendIdentifier ? [identifierDifference(r, original)] : [])].join('+');
      const row: TruthRow = { queryId: id, memberId: isMember ? (m[1] as string) : null, hazard };
      await queries.write(queryLine({ id, parameters }));
      await truth.write(truthLine(row));
      written++;
      if (!isMember) nonMemberQueries++;
    }
  } finally {
    await Promise.all([queries.close(), truth.close()]);
  }
  const skipped = Object.values(skippedBy).reduce((a, b) => a + b, 0);
  return { index, queries: written, nonMemberQueries, skipped, skippedBy };
}

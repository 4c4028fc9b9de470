import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BusinessRuleError, InvalidRequestError, PayloadTooLargeError } from '../errors.js';
import type { PersonFields } from '../matching/record.js';
import { memberPersonFields, type CoverageRecord, type MemberRecord } from '../members/member-repository.js';
import { RosterFileError } from '../members/roster-format/errors.js';
import { readRosterItems, type RosterFormat } from '../members/roster-format/items.js';
import { authorityOf } from '../pipeline/authority.js';
import { planMatches } from '../pipeline/plan.js';
import type { MatchInput } from '../pipeline/types.js';
import type { ChunkPlanner } from './chunks.js';
import { ownerAsActor, type JobRow } from './jobs.js';

/**
 * Roster reconciliation: one of our batch jobs (a workload) sends a whole roster — a partner's member list,
 * or an eligibility file — and learns, row by row, which of our members each row is. Rows go through the same
 * engine as $member-match; uncertain rows open review cases for our own organisation. Nothing is disclosed
 * to anyone outside, so no consent is involved; the results go back only to the workload that asked.
 */

/** A reconciliation row's input: the person, as the matcher takes it (identifiers are card identifiers). */
export interface ReconcileRow {
  person: PersonFields;
}

export interface SpooledUpload {
  file: string;
  contentHash: string;
  bytes: number;
  cleanup(): Promise<void>;
}

/**
 * Streams an upload to a temporary file (decompressing gzip on the way) and hashes its content, so the same
 * roster is recognised however it was compressed. More than `maxBytes` of content is a 413.
 */
export async function spoolUpload(input: Readable, options: { gzip: boolean; maxBytes: number }): Promise<SpooledUpload> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mm-roster-upload-'));
  const file = path.join(dir, 'upload');
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        callback(new PayloadTooLargeError('roster-too-large', `the roster is larger than ${options.maxBytes} bytes uncompressed`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    if (options.gzip) await pipeline(input, createGunzip(), meter, createWriteStream(file));
    else await pipeline(input, meter, createWriteStream(file));
  } catch (error) {
    await cleanup();
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw new InvalidRequestError('gzip-invalid', 'the upload is not valid gzip data');
    throw error;
  }
  return { file, contentHash: hash.digest('hex'), bytes, cleanup };
}

/** The upload's rows, read as a roster import reads them: each a person to reconcile, or why its line could not be read. */
export async function* reconcileRows(file: string, format: RosterFormat, memberIdentifierSystem: string): AsyncGenerator<JobRow> {
  const input = createReadStream(file);
  try {
    for await (const item of readRosterItems(input, format, memberIdentifierSystem)) {
      switch (item.kind) {
        case 'row':
          yield { line: item.line, input: { person: personOf(item.member, item.coverage) } };
          break;
        case 'patient':
          yield { line: item.line, input: { person: personOf(item.member, undefined) } };
          break;
        case 'coverage':
          yield { line: item.line, error: 'only Patient lines are reconciled (one per member)' };
          break;
        case 'rejected':
          yield { line: item.line, error: item.reason };
      }
    }
  } catch (error) {
    if (error instanceof RosterFileError) throw new BusinessRuleError('roster-unreadable', error.message);
    throw error;
  } finally {
    input.destroy();
  }
}

function personOf(member: MemberRecord, coverage: CoverageRecord | undefined): PersonFields {
  const identifiers = [member.memberId, coverage?.subscriberId, coverage?.coverageId].filter((v): v is string => !!v);
  return { ...memberPersonFields(member), identifiers: [...new Set(identifiers)] };
}

/**
 * A chunk of roster rows, through the match pipeline as the workload's own organisation: matched rows name our
 * member; uncertain rows open (or find) a review case. Nothing is disclosed outside, so no consent is judged.
 */
export const planReconcileRows: ChunkPlanner = async (deps, job, rows) => {
  const authority = authorityOf(ownerAsActor(job.owner));
  const inputs: MatchInput[] = rows.map((row) => {
    const person = (row.input as unknown as ReconcileRow).person;
    return { offered: person, cards: person.identifiers ?? [] };
  });
  return { authority, batch: await planMatches(deps, 'roster-reconcile', authority, inputs), rows: inputs.map((_, plan) => ({ plan })) };
};

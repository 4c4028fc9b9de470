import { createHash } from 'node:crypto';
import type { Group, GroupMember, Parameters, ParametersParameter, Patient } from 'fhir/r4.js';
import type { Config } from '../config.js';
import { PayloadTooLargeError, StructureError } from '../errors.js';
import { offeredPerson, parseMemberMatchRequest } from '../fhir/member-match-request.js';
import { authorityOf } from '../pipeline/authority.js';
import { planMatches } from '../pipeline/plan.js';
import type { MatchInput } from '../pipeline/types.js';
import { canonicalJson } from '../shared/canonical-json.js';
import type { ChunkPlanner } from './chunks.js';
import { ownerAsActor, type BatchJob, type JobResult } from './jobs.js';

/**
 * Da Vinci PDex `Group/$bulk-member-match`: many HRex member matches in one asynchronous request. Each
 * MemberBundle goes through the single-match pipeline — its own consent, the same resolution, links for
 * matches, review cases for the uncertain — and lands in one of three Groups: MatchedMembers,
 * NonMatchedMembers (no match, or with a reviewer until decided) and ConsentConstrainedMembers (the consent
 * cannot be honoured, or the member opted out with us).
 *
 * A member whose consent fails is not matched at all: putting them in ConsentConstrainedMembers reveals
 * nothing about membership, which matching first and then refusing would.
 */

export const PDEX_RESULT_SYSTEM = 'http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMultiMemberMatchResultCS';
const MATCH_PARAMETERS_EXTENSION = 'http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/base-ext-match-parameters';
export const RESULT_GROUPS = [
  { parameter: 'MatchedMembers', code: 'match', display: 'Matched' },
  { parameter: 'NonMatchedMembers', code: 'nomatch', display: 'Not Matched' },
  { parameter: 'ConsentConstrainedMembers', code: 'consentconstraint', display: 'Consent Constraint' },
] as const;
export type ResultGroupName = (typeof RESULT_GROUPS)[number]['parameter'];

/** What each member's row keeps: its MemberBundle, as a single-member $member-match Parameters. */
export interface BulkMemberRow {
  parameters: Parameters;
}

/**
 * Validates the kick-off synchronously: a malformed bundle is a 400 naming it by FHIRPath, more members than
 * `maxMembers` a 413. Returns one single-member Parameters per MemberBundle.
 */
export function parseBulkMemberMatchRequest(body: unknown, maxMembers: number): Parameters[] {
  if (typeof body !== 'object' || body === null || (body as { resourceType?: unknown }).resourceType !== 'Parameters') {
    throw new StructureError('not-parameters', 'the request body must be a FHIR Parameters resource', { expression: 'Parameters' });
  }
  const parameter = (body as Parameters).parameter;
  if (!Array.isArray(parameter) || parameter.length === 0) {
    throw new StructureError('member-bundle-missing', 'at least one MemberBundle is required', { expression: 'Parameters.parameter' });
  }
  if (parameter.length > maxMembers) {
    throw new PayloadTooLargeError('too-many-members', `a $bulk-member-match request may carry at most ${maxMembers} MemberBundles; split the request`);
  }
  return parameter.map((raw: unknown, i) => {
    const path = `Parameters.parameter[${i}]`;
    const bundle = raw as ParametersParameter | null;
    if (typeof bundle !== 'object' || bundle === null || bundle.name !== 'MemberBundle' || !Array.isArray(bundle.part)) {
      throw new StructureError('member-bundle-invalid', 'each parameter must be a MemberBundle with parts', { expression: path });
    }
    const single: Parameters = { resourceType: 'Parameters', parameter: bundle.part };
    try {
      parseMemberMatchRequest(single, { anyLocalPatientReference: true });
    } catch (error) {
      if (!(error instanceof StructureError)) throw error;
      // The single-match parser names `Parameters.parameter[k]`: here that is the bundle's part k.
      const expression = error.expression?.replace(/^Parameters\.parameter/, `${path}.part`) ?? path;
      throw new StructureError(error.code, error.message, { expression });
    }
    if (!bundle.part.some((p) => p?.name === 'Consent')) {
      throw new StructureError('consent-missing', 'each MemberBundle needs its Consent', { expression: `${path}.part` });
    }
    return single;
  });
}

/** The job's content hash: the same request (and output format) from the same client is the same job. */
export function bulkContentHash(body: unknown, outputFormat: string): string {
  return createHash('sha256').update(outputFormat).update('\n').update(canonicalJson(body)).digest('hex');
}

/**
 * A chunk of members, through the match pipeline as the partner itself: each MemberBundle is one input with its
 * consent and coverage. A bundle that no longer parses (it did at kick-off) is rejected, not matched.
 */
export const planBulkMembers: ChunkPlanner = async (deps, job, rows) => {
  const authority = authorityOf(ownerAsActor(job.owner));
  const inputs: MatchInput[] = [];
  const planned = rows.map((row) => {
    try {
      const request = parseMemberMatchRequest((row.input as unknown as BulkMemberRow).parameters, { anyLocalPatientReference: true });
      inputs.push({
        offered: offeredPerson(request),
        cards: request.cardIdentifiers,
        subscriberId: request.subscriberId,
        consent: request.consent,
        coverageToLink: request.coverageToLink,
      });
      return { plan: inputs.length - 1 };
    } catch {
      return { rejected: 'the MemberBundle could not be read' };
    }
  });
  return { authority, batch: await planMatches(deps, 'bulk-member-match', authority, inputs), rows: planned };
};

/**
 * The three Groups of a finished job. Each lists its members by reference to a contained copy of the
 * MemberPatient the partner sent (the `base-ext-match-parameters` extension); a matched member's entity is our
 * Patient, which the partner may now read. The matched Group's id is the job id.
 */
export function bulkResultGroups(config: Config, job: BatchJob, rows: { result: JobResult; input: BulkMemberRow | null }[]): Record<ResultGroupName, Group> {
  const groups = {} as Record<ResultGroupName, Group>;
  for (const spec of RESULT_GROUPS) {
    groups[spec.parameter] = {
      resourceType: 'Group',
      id: spec.parameter === 'MatchedMembers' ? job.id : `${job.id}-${spec.code}`,
      identifier: [{ system: job.owner.organization.system, value: job.owner.organization.value }],
      type: 'person',
      actual: true,
      code: { coding: [{ system: PDEX_RESULT_SYSTEM, code: spec.code, display: spec.display }] },
      managingEntity: { identifier: config.ownOrganization },
      contained: [],
      member: [],
    };
  }
  for (const { result, input } of rows) {
    const group = groups[groupOf(result)];
    const patient = memberPatientOf(input);
    const localId = String(result.seq + 1);
    group.contained!.push({ ...patient, id: localId } as Patient);
    const entity: GroupMember['entity'] = {
      extension: [{ url: MATCH_PARAMETERS_EXTENSION, valueReference: { reference: `#${localId}` } }],
      reference: result.outcome === 'matched' ? `Patient/${result.memberUuid}` : `#${localId}`,
    };
    group.member!.push({ entity });
  }
  for (const group of Object.values(groups)) {
    group.quantity = group.member!.length;
    if (group.contained!.length === 0) delete group.contained;
  }
  return groups;
}

/** STU 2.1: one Parameters with the three Groups (MatchedMembers always; the others when not empty). */
export function bulkResultParameters(groups: Record<ResultGroupName, Group>): Parameters {
  return {
    resourceType: 'Parameters',
    meta: { profile: ['http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-parameters-multi-member-match-bundle-out'] },
    parameter: RESULT_GROUPS.filter((g) => g.parameter === 'MatchedMembers' || (groups[g.parameter].member?.length ?? 0) > 0).map((g) => ({
      name: g.parameter,
      resource: groups[g.parameter],
    })),
  };
}

function groupOf(result: JobResult): ResultGroupName {
  if (result.outcome === 'matched') return 'MatchedMembers';
  if (result.outcome === 'consent-constrained') return 'ConsentConstrainedMembers';
  return 'NonMatchedMembers';
}

function memberPatientOf(input: BulkMemberRow | null): Patient {
  const part = input?.parameters.parameter?.find((p) => p.name === 'MemberPatient');
  return (part?.resource as Patient | undefined) ?? { resourceType: 'Patient' };
}

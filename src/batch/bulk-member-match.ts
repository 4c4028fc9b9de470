import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Consent, Coverage, Group, GroupMember, Parameters, ParametersParameter, Patient } from 'fhir/r4.js';
import { canonicalJson } from '../audit/audit-trail.js';
import type { Config } from '../config.js';
import { evaluateHrexConsent, type ConsentPermit } from '../consent/hrex-consent.js';
import { PayloadTooLargeError, StructureError } from '../errors.js';
import { offeredPerson, parseMemberMatchRequest, type MemberMatchRequest } from '../fhir/member-match-request.js';
import { saveLink } from '../links/member-links.js';
import { normalizePerson } from '../matching/normalize.js';
import { isHighRisk } from '../review/high-risk.js';
import { reviewRequestKey } from '../review/request-key.js';
import type { DbOrTx } from '../db/database.js';
import type { ChunkPlanner, RowPlan } from './chunks.js';
import type { BatchJob, JobResult } from './jobs.js';
import { planFromResolution, resolveRows } from './resolve-rows.js';

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

/** Decides one chunk of members (see the top of this file). */
export const planBulkMembers: ChunkPlanner = async (deps, job, rows) => {
  const { config } = deps;
  const owner = job.owner;
  const now = new Date();
  const plans: (RowPlan | undefined)[] = new Array<RowPlan | undefined>(rows.length);
  const toResolve: { index: number; request: MemberMatchRequest; permit: ConsentPermit; key: string; normalized: ReturnType<typeof normalizePerson> }[] = [];

  rows.forEach((row, index) => {
    let request: MemberMatchRequest;
    try {
      request = parseMemberMatchRequest((row.input as unknown as BulkMemberRow).parameters, { anyLocalPatientReference: true });
    } catch {
      plans[index] = { outcome: 'rejected', reason: 'the MemberBundle could not be read' };
      return;
    }
    const consent = evaluateHrexConsent(request.consent, {
      ownOrganization: config.ownOrganization,
      requesterOrganization: owner.organization,
      canSegmentSensitiveData: config.canSegmentSensitiveData,
      now,
    });
    if (consent.decision === 'deny') {
      plans[index] = {
        outcome: 'consent-constrained',
        reason: consent.reason,
        audit: { outcome: 'failure', reasonCode: consent.reason, consentDecision: `deny:${consent.reason}`, details: {} },
      };
      return;
    }
    const normalized = normalizePerson(offeredPerson(request));
    const key = reviewRequestKey(deps.phiHashKey, normalized, {
      cards: request.cardIdentifiers,
      subscriberId: request.subscriberId,
      coverageToLink: request.coverageToLink?.identifier,
      consent: request.consent,
    });
    toResolve.push({ index, request, permit: consent, key, normalized });
  });

  const resolutions = await resolveRows(
    deps,
    owner.organization,
    toResolve.map((r) => ({ offered: offeredPerson(r.request), normalized: r.normalized, requestKey: r.key })),
  );
  const decided = resolutions.map((resolution, k) => {
    const { request } = toResolve[k]!;
    return planFromResolution(deps, job, resolution, (decision) => ({
      reason: decision.reason,
      partnerClientId: owner.clientId,
      partnerOrganization: owner.organization,
      requestKey: toResolve[k]!.key,
      offered: offeredPerson(request),
      linkRequest: { coverageToLink: request.coverageToLink ?? null, consent: request.consent ?? null },
      candidates: decision.top,
      modelVersion: decision.modelVersion,
      bestProbability: decision.best.probability,
      slaDueAt: new Date(Date.now() + config.review.slaHours * 3_600_000),
      highRisk: isHighRisk(request, decision),
    }));
  });
  // A match is disclosed only if our registry lets it: a member who opted out is consent-constrained.
  const optedOut = await optedOutMembers(deps.db, decided.flatMap((p) => (p.outcome === 'matched' && p.memberUuid ? [p.memberUuid] : [])));
  decided.forEach((plan, k) => {
    const { index, request, permit } = toResolve[k]!;
    const memberUuid = plan.memberUuid;
    if (plan.outcome !== 'matched' || !memberUuid) {
      plans[index] = plan;
      return;
    }
    const registry = optedOut.get(memberUuid);
    if (registry) {
      plans[index] = {
        outcome: 'consent-constrained',
        reason: 'member-opted-out',
        audit: { ...plan.audit!, outcome: 'failure', reasonCode: 'member-opted-out', consentDecision: `deny:registry-${registry}`, memberRef: memberUuid },
      };
      return;
    }
    plan.audit!.details = { ...plan.audit!.details, consentPolicy: permit.policyUri };
    plan.write = async (trx, written) => {
      const link = await saveLink(trx, {
        memberUuid,
        clientId: owner.clientId,
        partnerOrganization: owner.organization,
        consent: request.consent as Consent,
        permit,
        coverageToLink: request.coverageToLink as Coverage | undefined,
      });
      written.audit!.details = { ...written.audit!.details, linkId: link.linkId, consentId: link.consentId };
    };
    plans[index] = plan;
  });
  return plans.map((p) => p ?? { outcome: 'rejected', reason: 'not decided' });
};

async function optedOutMembers(db: DbOrTx, memberUuids: string[]): Promise<Map<string, string>> {
  if (memberUuids.length === 0) return new Map();
  const rows = await sql<{ member_uuid: string; status: string }>`
    SELECT member_uuid, status FROM sharing_opt_outs WHERE member_uuid = ANY(${memberUuids}::uuid[])`.execute(db);
  return new Map(rows.rows.map((r) => [r.member_uuid, r.status]));
}

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

import { InvalidRequestError, NotFoundError } from '../../../errors.js';
import { minimalPatient, searchsetBundle } from '../../../fhir/resources.js';
import { liveLinkedMembers } from '../../../links/member-links.js';
import { findMemberSummary, findMemberSummaryByMemberId, type MemberSummary } from '../../../members/member-index.js';
import { parseSystemValue } from '../../../shared/system-value.js';
import type { AppDeps } from '../../deps.js';
import { ok, type OperationContext, type OperationResult } from '../operation.js';

/**
 * Patient read and search for partners. A partner sees only the members it holds a live, consented link to:
 * anything else is answered exactly as a member who does not exist (404, or an empty Bundle), so neither is an
 * oracle for membership.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function patientRead(deps: AppDeps, context: OperationContext, id: string): Promise<OperationResult> {
  const member = await linkedMember(deps, context, UUID.test(id) ? await findMemberSummary(deps.db, id) : undefined);
  if (!member) throw new NotFoundError('not-found', 'no such Patient is available to this client');
  return ok(minimalPatient(deps.config.memberIdentifierSystem, member));
}

/** `requestUrl` is the path and query as asked (under /fhir): the Bundle's self link repeats the search. */
export async function patientSearch(deps: AppDeps, context: OperationContext, query: Record<string, unknown>, requestUrl: string): Promise<OperationResult> {
  const identifier = singleQueryParam(query, 'identifier');
  const token = identifier ? (parseSystemValue(identifier) ?? { system: undefined, value: identifier }) : undefined;
  const unsupported = Object.keys(query).filter((k) => k !== 'identifier' && !k.startsWith('_'));
  if (!token || unsupported.length > 0) {
    throw new InvalidRequestError('search-unsupported', 'Patient search supports only identifier=[system|]value', { expression: 'Patient.identifier' });
  }
  const ours = token.system === undefined || token.system === deps.config.memberIdentifierSystem;
  const member = ours ? await linkedMember(deps, context, await findMemberSummaryByMemberId(deps.db, token.value)) : undefined;
  const patients = member ? [minimalPatient(deps.config.memberIdentifierSystem, member)] : [];
  context.audit.details.total = patients.length;
  return ok(searchsetBundle(selfLink(deps.config.fhirBaseUrl, requestUrl), deps.config.fhirBaseUrl, patients));
}

/** The member, if the caller's organisation holds a live link to it today; recorded on the audit event. */
async function linkedMember(deps: AppDeps, { actor, audit }: OperationContext, member: MemberSummary | undefined): Promise<MemberSummary | undefined> {
  if (!member || !(await liveLinkedMembers(deps.db, actor.organization, [member.id], new Date())).has(member.id)) return undefined;
  audit.memberRef = member.id;
  return member;
}

/** The search as asked, on the public base: `{fhirBase}/Patient?identifier=…` (the query kept as sent). */
function selfLink(fhirBaseUrl: string, requestUrl: string): string {
  const query = requestUrl.indexOf('?');
  return `${fhirBaseUrl}/Patient${query >= 0 ? requestUrl.slice(query) : ''}`;
}

function singleQueryParam(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new InvalidRequestError('search-parameter-repeated', `${name} may be given once`, { expression: `Patient.${name}` });
  }
  return value;
}

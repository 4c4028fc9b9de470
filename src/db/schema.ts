import type { ColumnType, Generated, JSONColumnType } from 'kysely';

/** A timestamp read back as a Date, written as a Date or an ISO string. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface MembersTable {
  id: Generated<string>;
  member_id: string;
  source_resource_id: string | null;
  given: string;
  middle: string | null;
  family: string;
  suffix: string | null;
  /** `YYYY-MM-DD`: the DATE parser is replaced so birth dates never shift with the time zone. */
  birth_date: string;
  gender: string | null;
  address_line: string | null;
  city: string | null;
  state: string | null;
  postal_code: string | null;
  phone: string | null;
  email: string | null;
  family_key: string;
  given_key: string;
  content_hash: string;
  ended_at: Date | null;
  last_seen_job: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MemberIdentifiersTable {
  member_uuid: string;
  system: string;
  value: string;
  type_code: string | null;
}

export interface CoveragesTable {
  id: Generated<string>;
  member_uuid: string;
  coverage_id: string;
  subscriber_id: string | null;
  relationship: string | null;
  group_id: string | null;
  plan_id: string | null;
  period_start: string | null;
  period_end: string | null;
  content_hash: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PartnerClientsTable {
  client_id: string;
  tls_bound: Generated<boolean>;
  name: string;
  organization_system: string;
  organization_value: string;
  jwks: JSONColumnType<{ keys: Record<string, unknown>[] }> | null;
  jwks_url: string | null;
  scopes: string[];
  enabled: Generated<boolean>;
  created_at: Timestamp;
  disabled_at: Date | null;
}

export interface ConsentsTable {
  id: Generated<string>;
  member_uuid: string;
  partner_client_id: string;
  recipient_system: string;
  recipient_value: string;
  policy_uri: string;
  period_start: Date | string;
  period_end: Date | string;
  source_reference: string | null;
  resource: JSONColumnType<Record<string, unknown>>;
  resource_hash: string;
  created_at: Timestamp;
}

export interface MemberLinksTable {
  id: Generated<string>;
  member_uuid: string;
  partner_client_id: string;
  partner_org_system: string;
  partner_org_value: string;
  link_coverage_key: string;
  coverage_to_link: JSONColumnType<Record<string, unknown>> | null;
  consent_id: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  revoked_at: Date | null;
  revoked_by: string | null;
  revoke_reason: string | null;
}

export interface AuditEventsTable {
  seq: Generated<string>;
  event_id: string;
  recorded_at: Date | string;
  request_id: string | null;
  source_ip: string | null;
  actor_class: string | null;
  client_id: string | null;
  organization: string | null;
  token_jti: string | null;
  purpose_of_use: string | null;
  operation: string;
  outcome: 'success' | 'failure';
  http_status: number | null;
  reason_code: string | null;
  consent_decision: string | null;
  member_ref: string | null;
  details: JSONColumnType<Record<string, unknown>>;
  /** The inline chain's previous hash (rows before migration 0017); NULL for a row chained by a link. */
  prev_hash: string | null;
  /** Inline rows: the chain hash. Later rows: the row's own keyed MAC, which its link covers. */
  hash: string;
}

/** The chain since migration 0017: one keyed link per event, in the order the sealer chained them. */
export interface AuditChainLinksTable {
  position: string;
  event_seq: string;
  prev_link: string;
  link: string;
  linked_at: Generated<Date>;
}

/** Events inserted but not yet linked (filled by a trigger on audit_events; emptied by the sealer). */
export interface AuditPendingTable {
  event_seq: string;
}

/** One row: where the keyed (HMAC) chain starts, and the chain's id that checkpoints name (migration 0012). */
export interface AuditChainTable {
  chain_id: Generated<string>;
  keyed_from_seq: string;
  algorithm: 'hmac-sha256';
  created_at: Generated<Date>;
}

/** A copy of each signed checkpoint; the anchors are the checkpoint file and the log stream (docs/audit.md). */
export interface AuditCheckpointsTable {
  seq: string;
  hash: string;
  signed_at: Date | string;
  key_id: string;
  signature: string;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: JSONColumnType<Record<string, unknown>>;
  private_jwk: JSONColumnType<Record<string, unknown>>;
  active: Generated<boolean>;
  created_at: Timestamp;
}

export interface ServiceSecretsTable {
  name: string;
  value: string;
  created_at: Timestamp;
}

export interface MemberBlockingKeysTable {
  key: string;
  member_uuid: string;
}

export interface MatchModelsTable {
  version: string;
  active: Generated<boolean>;
  parameters: JSONColumnType<Record<string, unknown>>;
  training: JSONColumnType<Record<string, unknown>>;
  created_at: Generated<Date>;
  activated_at: Date | null;
}

export interface SharingOptOutsTable {
  member_uuid: string;
  status: string;
  source: string;
  recorded_at: Generated<Date>;
}

export interface WorkloadIdentitiesTable {
  workload_id: string;
  name: string;
  issuer: string;
  subject: string;
  audience: string;
  jwks: JSONColumnType<{ keys: Record<string, unknown>[] }> | null;
  jwks_url: string | null;
  scopes: string[];
  enabled: Generated<boolean>;
  created_at: Generated<Date>;
  disabled_at: Date | null;
}

export interface AgentRegistrationsTable {
  agent_id: string;
  name: string;
  jwks: JSONColumnType<{ keys: Record<string, unknown>[] }>;
  tool_scopes: string[];
  enabled: Generated<boolean>;
  created_at: Generated<Date>;
  disabled_at: Date | null;
}

export interface ReviewCasesTable {
  id: Generated<string>;
  status: Generated<string>;
  reason: string;
  partner_client_id: string | null;
  partner_org_system: string;
  partner_org_value: string;
  request_key: string;
  offered: JSONColumnType<Record<string, unknown>>;
  link_request: JSONColumnType<Record<string, unknown>>;
  candidates: JSONColumnType<unknown[]>;
  model_version: string;
  best_probability: number | null;
  priority: Generated<number>;
  sla_due_at: Date;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  decision: string | null;
  decided_member_uuid: string | null;
  decided_by: string | null;
  decision_reason: string | null;
  decided_at: Date | null;
  version: Generated<number>;
  high_risk: Generated<boolean>;
  confirmed_by: string | null;
  batch_job_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ReviewOutboxTable {
  id: Generated<string>;
  case_id: string;
  created_at: Generated<Date>;
  published_at: Date | null;
}

/** Each member's match profile as stored text (src/matching/profile.ts, migration 0021), beside its member number. */
export interface MemberMatchProfilesTable {
  member_uuid: string;
  member_id: string;
  profile: string;
  /** The member's coverages' subscriber and coverage ids, kept by triggers on `coverages` (migration 0023). */
  card_values: Generated<string[]>;
}

export interface Database {
  members: MembersTable;
  member_match_profiles: MemberMatchProfilesTable;
  member_identifiers: MemberIdentifiersTable;
  coverages: CoveragesTable;
  partner_clients: PartnerClientsTable;
  consents: ConsentsTable;
  member_links: MemberLinksTable;
  audit_events: AuditEventsTable;
  audit_chain: AuditChainTable;
  audit_chain_links: AuditChainLinksTable;
  audit_pending: AuditPendingTable;
  audit_checkpoints: AuditCheckpointsTable;
  signing_keys: SigningKeysTable;
  service_secrets: ServiceSecretsTable;
  member_blocking_keys: MemberBlockingKeysTable;
  match_models: MatchModelsTable;
  sharing_opt_outs: SharingOptOutsTable;
  workload_identities: WorkloadIdentitiesTable;
  agent_registrations: AgentRegistrationsTable;
  review_cases: ReviewCasesTable;
  review_outbox: ReviewOutboxTable;
  batch_jobs: BatchJobsTable;
  batch_rows: BatchRowsTable;
  batch_chunks: BatchChunksTable;
  batch_results: BatchResultsTable;
  index_import_seen: { job_id: string; member_id: string };
}

export interface BatchJobsTable {
  id: Generated<string>;
  kind: string;
  state: Generated<string>;
  owner_class: string;
  owner_client_id: string;
  owner_org_system: string;
  owner_org_value: string;
  content_hash: string;
  options: JSONColumnType<Record<string, unknown>>;
  total_rows: Generated<number>;
  chunk_size: number;
  chunk_count: Generated<number>;
  chunks_done: Generated<number>;
  rows_done: Generated<number>;
  matched: Generated<number>;
  review: Generated<number>;
  no_match: Generated<number>;
  consent_constrained: Generated<number>;
  rejected: Generated<number>;
  summary: JSONColumnType<Record<string, unknown>> | null;
  error: string | null;
  dispatched_at: Date | null;
  created_at: Generated<Date>;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface BatchRowsTable {
  job_id: string;
  seq: number;
  line: number;
  input: JSONColumnType<Record<string, unknown>> | null;
  error: string | null;
}

export interface BatchChunksTable {
  job_id: string;
  chunk: number;
  first_seq: number;
  last_seq: number;
  done_at: Date | null;
  attempts: Generated<number>;
}

export interface BatchResultsTable {
  job_id: string;
  seq: number;
  line: number;
  outcome: string;
  member_uuid: string | null;
  member_id: string | null;
  band: string | null;
  probability: number | null;
  review_case_id: string | null;
  reason: string | null;
}

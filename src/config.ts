import { DEFAULT_THRESHOLDS } from './matching/decision.js';
import os from 'node:os';
import { z } from 'zod';
import { parseSystemValue } from './shared/system-value.js';

const systemValue = z.string().transform((text, ctx) => {
  const parsed = parseSystemValue(text);
  if (!parsed) {
    ctx.addIssue({ code: 'custom', message: 'expected system|value' });
    return z.NEVER;
  }
  return parsed;
});

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const configSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default('127.0.0.1'),
    // Prometheus metrics on their own listener (src/http/metrics-server.ts), bound to HOST; `off` serves none.
    METRICS_PORT: z.union([z.literal('off'), z.coerce.number().int().min(0).max(65535)]).default(9464),
    DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/member_match'),
    REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
    REDIS_KEY_PREFIX: z.string().default('mm:'),
    PUBLIC_BASE_URL: z.url().optional(),
    OWN_ORGANIZATION: systemValue.prefault('http://hl7.org/fhir/sid/us-npi|9876543210'),
    MEMBER_IDENTIFIER_SYSTEM: z.string().min(1).default('http://example.org/old-payer/identifiers/member'),
    CAN_SEGMENT_SENSITIVE_DATA: booleanFlag.prefault('false'),
    MAX_BODY_BYTES: z.coerce.number().int().positive().default(262_144),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(300).default(300),
    PHI_HASH_KEY: z.string().min(32).optional(),
    // Defaults justified by the evaluation in docs/accuracy.md.
    MATCH_UPPER_THRESHOLD: z.coerce.number().gt(0).lt(1).default(DEFAULT_THRESHOLDS.upper),
    MATCH_LOWER_THRESHOLD: z.coerce.number().gt(0).lt(1).default(DEFAULT_THRESHOLDS.lower),
    MATCH_MARGIN_BITS: z.coerce.number().min(0).default(DEFAULT_THRESHOLDS.marginBits),
    BLOCK_CAP: z.coerce.number().int().min(10).default(1000),
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(600),
    AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().positive().default(120),
    AUTH_FAILURES_AUDITED_PER_MINUTE: z.coerce.number().int().min(0).default(30),
    BRUTE_FORCE_CARD_VARIANTS: z.coerce.number().int().positive().default(5),
    BRUTE_FORCE_BIRTH_DATE_VARIANTS: z.coerce.number().int().positive().default(5),
    // A volume backstop, sized so one legitimate bulk request (BULK_MAX_MEMBERS, a third of them not ours) fits;
    // probing is caught by the variant counters above.
    BRUTE_FORCE_UNMATCHED: z.coerce.number().int().positive().default(2_000),
    BRUTE_FORCE_WINDOW_SECONDS: z.coerce.number().int().positive().default(3600),
    MATCH_LOCKOUT_SECONDS: z.coerce.number().int().positive().default(900),
    TLS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    TLS_CLIENT_CA_FILE: z.string().min(1).optional(),
    RUN_WORKERS: booleanFlag.prefault('true'),
    // API processes on PORT (node:cluster, src/cluster.ts; docs/scaling.md): a number, or `auto` for one per CPU
    // this process may run on (os.availableParallelism()). Default 1: measured on a 2-core machine, one API
    // process and Postgres already keep both cores busy, and a second process added no $member-match
    // throughput (docs/benchmarks.md, docs/scaling.md).
    WEB_CONCURRENCY: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(64)]).default(1),
    REVIEW_SLA_HOURS: z.coerce.number().positive().default(24),
    REVIEW_LEASE_SECONDS: z.coerce.number().int().min(1).default(300),
    REVIEW_RETRY_AFTER_SECONDS: z.coerce.number().int().positive().default(3600),
    REVIEW_CASES_PER_HOUR: z.coerce.number().int().min(0).default(500),
    REVIEW_CASES_PER_HOUR_INTERNAL: z.coerce.number().int().min(0).default(50_000),
    BULK_MAX_MEMBERS: z.coerce.number().int().positive().default(5_000),
    BULK_MAX_BODY_BYTES: z.coerce.number().int().positive().default(33_554_432),
    ROSTER_MAX_BYTES: z.coerce.number().int().positive().default(2_147_483_648),
    BATCH_CHUNK_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    BATCH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
    BATCH_ROW_PARALLELISM: z.coerce.number().int().min(1).max(64).default(6),
    BATCH_LOCK_SECONDS: z.coerce.number().int().min(1).default(30),
    BATCH_RETRY_AFTER_SECONDS: z.coerce.number().int().positive().default(5),
    BATCH_RETENTION_HOURS: z.coerce.number().positive().default(72),
    // How often the workers rebuild queue entries lost from Redis (docs/redis-loss.md).
    QUEUE_RECONCILE_SECONDS: z.coerce.number().positive().default(30),
    OIDC_ISSUER: z.url().optional(),
    OIDC_JWKS_URL: z.url().optional(),
    OIDC_AUDIENCE: z.string().min(1).default('member-match'),
    OIDC_ROLES_CLAIM: z.string().min(1).default('roles'),
    DEV_MODE: booleanFlag.prefault('false'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    // The runtime database role and the anchored audit trail: docs/audit.md.
    APP_DATABASE_URL: z.url().optional(),
    MIGRATE_ON_START: booleanFlag.prefault('true'),
    STATE_DIR: z.string().min(1).optional(),
    AUDIT_KEY: z.string().min(32).optional(),
    AUDIT_KEY_FILE: z.string().min(1).optional(),
    AUDIT_CHECKPOINT_FILE: z.string().min(1).optional(),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(300),
  })
  .refine((env) => env.TLS_PORT === undefined || (env.TLS_CERT_FILE && env.TLS_KEY_FILE && env.TLS_CLIENT_CA_FILE), {
    message: 'TLS_PORT needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE',
    path: ['TLS_PORT'],
  })
  .refine((env) => !env.OIDC_ISSUER === !env.OIDC_JWKS_URL, {
    message: 'OIDC_ISSUER and OIDC_JWKS_URL are set together',
    path: ['OIDC_JWKS_URL'],
  })
  .refine((env) => env.MATCH_LOWER_THRESHOLD < env.MATCH_UPPER_THRESHOLD, {
    message: 'MATCH_LOWER_THRESHOLD must be below MATCH_UPPER_THRESHOLD',
    path: ['MATCH_LOWER_THRESHOLD'],
  })
  .transform((env) => {
    const publicBaseUrl = (env.PUBLIC_BASE_URL ?? `http://${env.HOST}:${env.PORT}`).replace(/\/+$/, '');
    return {
      port: env.PORT,
      host: env.HOST,
      metricsPort: env.METRICS_PORT === 'off' ? undefined : env.METRICS_PORT,
      databaseUrl: env.DATABASE_URL,
      redisUrl: env.REDIS_URL,
      redisKeyPrefix: env.REDIS_KEY_PREFIX,
      publicBaseUrl,
      fhirBaseUrl: `${publicBaseUrl}/fhir`,
      tokenUrl: `${publicBaseUrl}/oauth/token`,
      ownOrganization: env.OWN_ORGANIZATION,
      memberIdentifierSystem: env.MEMBER_IDENTIFIER_SYSTEM,
      canSegmentSensitiveData: env.CAN_SEGMENT_SENSITIVE_DATA,
      maxBodyBytes: env.MAX_BODY_BYTES,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      phiHashKey: env.PHI_HASH_KEY,
      matchThresholds: { upper: env.MATCH_UPPER_THRESHOLD, lower: env.MATCH_LOWER_THRESHOLD, marginBits: env.MATCH_MARGIN_BITS },
      blockCap: env.BLOCK_CAP,
      tls:
        env.TLS_PORT === undefined
          ? undefined
          : { port: env.TLS_PORT, certFile: env.TLS_CERT_FILE!, keyFile: env.TLS_KEY_FILE!, clientCaFile: env.TLS_CLIENT_CA_FILE! },
      oidc: { issuer: env.OIDC_ISSUER, jwksUrl: env.OIDC_JWKS_URL, audience: env.OIDC_AUDIENCE, rolesClaim: env.OIDC_ROLES_CLAIM },
      devMode: env.DEV_MODE,
      runWorkers: env.RUN_WORKERS,
      webConcurrency: env.WEB_CONCURRENCY === 'auto' ? os.availableParallelism() : env.WEB_CONCURRENCY,
      queueReconcileSeconds: env.QUEUE_RECONCILE_SECONDS,
      review: { slaHours: env.REVIEW_SLA_HOURS, leaseSeconds: env.REVIEW_LEASE_SECONDS, retryAfterSeconds: env.REVIEW_RETRY_AFTER_SECONDS },
      batch: {
        bulkMaxMembers: env.BULK_MAX_MEMBERS,
        bulkMaxBodyBytes: env.BULK_MAX_BODY_BYTES,
        rosterMaxBytes: env.ROSTER_MAX_BYTES,
        chunkSize: env.BATCH_CHUNK_SIZE,
        concurrency: env.BATCH_CONCURRENCY,
        rowParallelism: env.BATCH_ROW_PARALLELISM,
        lockSeconds: env.BATCH_LOCK_SECONDS,
        retryAfterSeconds: env.BATCH_RETRY_AFTER_SECONDS,
        retentionHours: env.BATCH_RETENTION_HOURS,
      },
      authFailures: { perMinute: env.AUTH_FAILURES_PER_MINUTE, auditedPerMinute: env.AUTH_FAILURES_AUDITED_PER_MINUTE },
      limits: {
        requestsPerMinute: env.RATE_LIMIT_PER_MINUTE,
        cardVariantsPerPerson: env.BRUTE_FORCE_CARD_VARIANTS,
        birthDateVariantsPerName: env.BRUTE_FORCE_BIRTH_DATE_VARIANTS,
        unmatchedPerWindow: env.BRUTE_FORCE_UNMATCHED,
        windowSeconds: env.BRUTE_FORCE_WINDOW_SECONDS,
        lockoutSeconds: env.MATCH_LOCKOUT_SECONDS,
        reviewCasesPerHour: env.REVIEW_CASES_PER_HOUR,
        internalReviewCasesPerHour: env.REVIEW_CASES_PER_HOUR_INTERNAL,
      },
      logLevel: env.LOG_LEVEL,
      appDatabaseUrl: env.APP_DATABASE_URL,
      migrateOnStart: env.MIGRATE_ON_START,
      audit: {
        key: env.AUDIT_KEY,
        keyFile: env.AUDIT_KEY_FILE,
        stateDir: env.STATE_DIR,
        checkpointFile: env.AUDIT_CHECKPOINT_FILE,
        checkpointIntervalSeconds: env.AUDIT_CHECKPOINT_INTERVAL_SECONDS,
      },
    };
  });

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {}

/** Parses the environment once, at start-up. Empty variables count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = configSchema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  return result.data;
}

/** For process entry points: the configuration, or the problem printed and exit code 2. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

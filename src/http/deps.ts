import type { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { AuthFailureGuard } from './auth-failures.js';
import type { Db } from '../db/database.js';
import type { AccessTokenVerifier } from '../identity/access-tokens.js';
import type { HumanVerifier } from '../identity/humans.js';
import type { ServiceSigningKey } from '../identity/signing-keys.js';
import type { Logger } from '../logger.js';
import type { ModelProvider } from '../members/model-store.js';
import type { PolicyEngine } from '../policy/cedar-policy.js';

/** Everything the HTTP layer needs, built once at start-up (src/main.ts) or by a test. */
export interface AppDeps {
  config: Config;
  db: Db;
  redis: Redis;
  logger: Logger;
  signingKey: ServiceSigningKey;
  verifyAccessToken: AccessTokenVerifier;
  /** OpenID Connect tokens of review staff (and, with DEV_MODE=true, of the development IdP). */
  verifyHumanToken: HumanVerifier;
  phiHashKey: string;
  /** The Cedar policy set (src/policy/cedar), validated against its schema at start-up. */
  policy: PolicyEngine;
  /**
   * The active matching model, checked against the active version on every call, or read from the candidate
   * lookup that reports it (docs/model-activation.md).
   */
  matchModel: ModelProvider;
  version: string;
  /** The BullMQ review queue, for the staff dashboard and its metrics (absent in tests that do not need it). */
  reviewQueue?: Queue;
  /** The BullMQ batch queue (bulk matches, roster reconciliations), likewise. */
  batchQueue?: Queue;
  /** Failed authentication per source address: throttling and aggregated auditing (src/http/auth-failures.ts). */
  authFailures?: AuthFailureGuard;
  /** Hands new batch jobs to the queue at once (the workers' dispatcher catches any it could not). */
  batchFlow?: FlowProducer;
}

import path from 'node:path';
import { loadConfig, type Config } from '../config.js';
import { loadAuditKeys, stateDirOf, type AuditKeys } from './audit-key.js';

/**
 * The audit trail's process-wide settings: its key and its checkpoint file. Entry points configure them from
 * their configuration (`configureAuditTrail`); code that appends or verifies without that (a test, a tool)
 * gets them from the environment on first use. Process-wide because every writer of one process must chain
 * with the same key, whichever connection or transaction it writes through.
 */
export interface AuditTrailSettings {
  keys: AuditKeys;
  /** Append-only JSON lines of signed checkpoints. */
  checkpointFile: string;
  checkpointIntervalSeconds: number;
}

let current: AuditTrailSettings | undefined;

export function configureAuditTrail(audit: Config['audit']): AuditTrailSettings {
  current = {
    keys: loadAuditKeys(audit),
    checkpointFile: audit.checkpointFile ?? path.join(stateDirOf(audit), 'audit-checkpoints.jsonl'),
    checkpointIntervalSeconds: audit.checkpointIntervalSeconds,
  };
  return current;
}

export function auditTrailSettings(): AuditTrailSettings {
  return current ?? configureAuditTrail(loadConfig().audit);
}

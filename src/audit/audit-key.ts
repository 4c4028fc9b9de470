import { createHash, createPrivateKey, createPublicKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/**
 * The audit key: the secret behind the keyed hash chain and the checkpoint signatures. It is never stored in
 * the database, so whoever can rewrite the audit table cannot recompute the chain or forge a checkpoint.
 *
 * Where it comes from, first match wins: AUDIT_KEY (the key itself, at least 32 characters, from a secret
 * store), AUDIT_KEY_FILE (a file holding it), else the local key file `<state dir>/audit.key`, created once
 * with mode 0600 when missing so that a first `npm start` needs no configuration. Two keys are derived from
 * it (HKDF-SHA256): the chain's HMAC-SHA256 key and an Ed25519 checkpoint signing key, whose public half
 * anyone may hold to check checkpoints without being able to forge one.
 */

export interface AuditKeySettings {
  /** AUDIT_KEY */
  key?: string | undefined;
  /** AUDIT_KEY_FILE */
  keyFile?: string | undefined;
  /** STATE_DIR; default {@link defaultStateDir} */
  stateDir?: string | undefined;
}

export interface AuditKeys {
  /** HMAC-SHA256 key of the chain. */
  chainKey: Buffer;
  checkpointPrivateKey: KeyObject;
  checkpointPublicKey: KeyObject;
  /** A fingerprint of the checkpoint public key (16 hex): which key signed a checkpoint, never the key. */
  keyId: string;
  /** Where the key came from, for messages: `AUDIT_KEY`, or a file path. */
  source: string;
}

const MIN_KEY_CHARS = 32;
const HKDF_SALT = 'member-match audit trail';
/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The local state directory: `$XDG_STATE_HOME/member-match`, or `~/.local/state/member-match`. */
export function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME || path.join(homedir(), '.local', 'state');
  return path.join(base, 'member-match');
}

export function stateDirOf(settings: { stateDir?: string | undefined }): string {
  return settings.stateDir ?? defaultStateDir();
}

export function loadAuditKeys(settings: AuditKeySettings): AuditKeys {
  if (settings.key) return deriveAuditKeys(checkedKey(settings.key, 'AUDIT_KEY'), 'AUDIT_KEY');
  if (settings.keyFile) return deriveAuditKeys(checkedKey(readFileSync(settings.keyFile, 'utf8').trim(), settings.keyFile), settings.keyFile);
  const file = path.join(stateDirOf(settings), 'audit.key');
  return deriveAuditKeys(checkedKey(readOrCreateKeyFile(file), file), file);
}

function checkedKey(key: string, source: string): string {
  if (key.length < MIN_KEY_CHARS) throw new Error(`the audit key from ${source} is shorter than ${MIN_KEY_CHARS} characters`);
  return key;
}

/**
 * Reads the local key file, creating it first if missing. Creation is atomic (written under a temporary name,
 * then hard-linked into place, which fails if another process got there first), so processes starting
 * together all end up with the same key.
 */
function readOrCreateKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temporary, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(temporary, 0o600); // whatever the umask
  try {
    linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
  return readFileSync(file, 'utf8').trim();
}

export function deriveAuditKeys(key: string, source: string): AuditKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', Buffer.from(key, 'utf8'), HKDF_SALT, info, 32));
  const checkpointPrivateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, derive('checkpoint-ed25519')]), format: 'der', type: 'pkcs8' });
  const checkpointPublicKey = createPublicKey(checkpointPrivateKey);
  const keyId = createHash('sha256').update(checkpointPublicKey.export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 16);
  return { chainKey: derive('chain-hmac-sha256'), checkpointPrivateKey, checkpointPublicKey, keyId, source };
}

import { sql } from 'kysely';
import { openDatabase, type Db } from '../../src/db/database.js';
import { BLOCKING_KEYS_VERSION } from '../../src/matching/blocking.js';
import { MATCH_PROFILE_VERSION } from '../../src/matching/profile.js';
import { importRoster } from '../../src/members/roster-import.js';
import { fileDigest } from '../../src/shared/file-digest.js';

/**
 * Evaluation and training run against an index roster loaded into a database of its own, named after the
 * roster's content (`<database>_eval_<sha12>`): the service's own member index is never touched, and a
 * second run on the same roster reuses the loaded index (the import is idempotent, so a re-run only checks).
 */
export async function openIndexDatabase(
  serverDatabaseUrl: string,
  rosterFile: string,
  memberIdentifierSystem: string,
  log: (message: string) => void,
): Promise<{ db: Db; url: string }> {
  const digest = (await fileDigest(rosterFile)).slice(0, 12);
  const url = new URL(serverDatabaseUrl);
  const base = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'member_match';
  url.pathname = `/${base}_eval_${digest}`;
  const db = await openDatabase(url.toString(), 8);
  const name = url.pathname.slice(1);
  // A completed import leaves a comment on the database; an interrupted one does not, and is resumed.
  const marker = await sql<{ comment: string | null }>`
    SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = ${name}`.execute(db);
  // The marker names the blocking-key and profile versions too: an index written by older code is re-imported
  // (and so re-keyed and re-profiled).
  const expected = `imported:${digest}:blocking-v${BLOCKING_KEYS_VERSION}:profile-v${MATCH_PROFILE_VERSION}`;
  if (marker.rows[0]?.comment === expected) {
    log(`reusing the index already loaded in ${name}`);
  } else {
    const started = Date.now();
    const summary = await importRoster(db, rosterFile, { memberIdentifierSystem });
    await sql.raw(`COMMENT ON DATABASE "${name}" IS '${expected}'`).execute(db);
    log(`index ${name}: ${summary.inserted} inserted, ${summary.updated} updated, ${summary.unchanged} unchanged in ${((Date.now() - started) / 1000).toFixed(1)} s (${summary.rejected} rejected)`);
  }
  return { db, url: url.toString() };
}

import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import type { Db, DbOrTx } from '../db/database.js';
import { projectFile } from '../project-files.js';
import { validateParameters, type MatchModel, type ModelParameters } from '../matching/model.js';

/**
 * Versioned models in `match_models`; exactly one is active. A fresh database gets the model shipped in
 * `fixtures/models/default.json` (trained on the synthetic index, see README "Accuracy"), so the service
 * answers with no training step; `member-match model train` replaces it.
 */

export const DEFAULT_MODEL_FILE = projectFile('fixtures', 'models', 'default.json');

export interface StoredModel extends MatchModel {
  training: Record<string, unknown>;
}

export async function loadActiveModel(db: DbOrTx): Promise<MatchModel | undefined> {
  const row = await db.selectFrom('match_models').select(['version', 'parameters']).where('active', '=', true).executeTakeFirst();
  return row && { version: row.version, parameters: row.parameters as unknown as ModelParameters };
}

export async function saveModel(db: DbOrTx, model: StoredModel, activate: boolean): Promise<void> {
  const problems = validateParameters(model.parameters);
  if (problems.length > 0) throw new Error(`invalid model ${model.version}: ${problems.join('; ')}`);
  await db
    .insertInto('match_models')
    .values({
      version: model.version,
      parameters: JSON.stringify(model.parameters),
      training: JSON.stringify(model.training),
    })
    .onConflict((oc) => oc.column('version').doNothing())
    .execute();
  if (activate) await activateModel(db, model.version);
}

export async function activateModel(db: DbOrTx, version: string): Promise<void> {
  const exists = await db.selectFrom('match_models').select('version').where('version', '=', version).executeTakeFirst();
  if (!exists) throw new Error(`no model with version ${version}`);
  await db.updateTable('match_models').set({ active: false }).where('active', '=', true).where('version', '!=', version).execute();
  await db.updateTable('match_models').set({ active: true, activated_at: new Date() }).where('version', '=', version).execute();
}

export async function listModels(db: DbOrTx) {
  return db.selectFrom('match_models').select(['version', 'active', 'created_at', 'activated_at', 'training']).orderBy('created_at', 'desc').execute();
}

export function readModelFile(file: string): StoredModel {
  const model = JSON.parse(readFileSync(file, 'utf8')) as StoredModel;
  return model;
}

/** The active model, installing the shipped default first when the database has none. */
export async function ensureActiveModel(db: Db): Promise<MatchModel> {
  const active = await loadActiveModel(db);
  if (active) return active;
  // Several processes may start together on a fresh database: one installs, the others wait and read it.
  await db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(hashtext('member-match:default-model'))`.execute(trx);
    if (!(await loadActiveModel(trx))) await saveModel(trx, readModelFile(DEFAULT_MODEL_FILE), true);
  });
  return (await loadActiveModel(db))!;
}

const MODEL_CACHE_MS = 30_000;

/**
 * The active model for a long-running process: read at start (installing the default if needed), then
 * re-read at most every 30 s so `member-match model activate` takes effect without a restart.
 */
export async function createModelProvider(db: Db, cacheMs = MODEL_CACHE_MS): Promise<() => Promise<MatchModel>> {
  let model = await ensureActiveModel(db);
  let readAt = Date.now();
  return async () => {
    if (Date.now() - readAt > cacheMs) {
      readAt = Date.now();
      model = (await loadActiveModel(db)) ?? model;
    }
    return model;
  };
}

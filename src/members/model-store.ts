import { readFileSync } from 'node:fs';
import pg from 'pg';
import { sql } from 'kysely';
import { PREPARED_STATEMENT, type Db, type DbOrTx } from '../db/database.js';
import { projectFile } from '../project-files.js';
import type { ModelDiagnostics } from '../matching/diagnostics.js';
import { validateParameters, type MatchModel, type ModelParameters } from '../matching/model.js';

/**
 * Versioned models in `match_models`; exactly one is active. A fresh database gets the model shipped in
 * `fixtures/models/default.json` (trained on the synthetic index, see docs/accuracy.md), so the service
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

export async function saveModel(db: DbOrTx, model: StoredModel, activate: boolean, options: { force?: boolean } = {}): Promise<void> {
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
  if (activate) await activateModel(db, model.version, options);
}

/**
 * The diagnostics a trained model carries (training.diagnostics, see matching/diagnostics.ts) must have passed
 * for it to be activated; a model trained before diagnostics existed carries none and is not refused.
 */
function failedChecks(training: unknown): string[] {
  const diagnostics = (training as { diagnostics?: ModelDiagnostics } | null)?.diagnostics;
  if (!diagnostics || diagnostics.passed) return [];
  return diagnostics.checks.filter((c) => !c.passed).map((c) => `${c.check} (${c.detail})`);
}

/** The channel on which an activation is announced (payload: the new active version). */
export const MODEL_CHANNEL = 'member_match_model';
/** Serialises activations (two at once would both clear the old flag and collide on the one-active index). */
const ACTIVATE_LOCK_KEY = 0x6d6d_a0d4;

/**
 * Makes `version` the active model in one transaction (its own, or the caller's): the old flag is cleared, the
 * new one set and a NOTIFY sent together, so no reader ever sees zero or two active models, and listeners hear
 * of the change exactly when it commits. Running providers also check the active version on every call
 * ({@link createModelProvider}), so once this returns the next request anywhere is scored by `version`.
 */
export async function activateModel(db: DbOrTx, version: string, options: { force?: boolean } = {}): Promise<void> {
  if (!db.isTransaction) return db.transaction().execute((trx) => activateModel(trx, version, options));
  await sql`SELECT pg_advisory_xact_lock(${ACTIVATE_LOCK_KEY})`.execute(db);
  const exists = await db.selectFrom('match_models').select(['version', 'training']).where('version', '=', version).executeTakeFirst();
  if (!exists) throw new Error(`no model with version ${version}`);
  const failed = failedChecks(exists.training);
  if (failed.length > 0 && !options.force) throw new Error(`model ${version} failed its diagnostics, not activated: ${failed.join('; ')}`);
  await db.updateTable('match_models').set({ active: false }).where('active', '=', true).where('version', '!=', version).execute();
  await db.updateTable('match_models').set({ active: true, activated_at: new Date() }).where('version', '=', version).execute();
  await sql`SELECT pg_notify(${MODEL_CHANNEL}, ${version})`.execute(db);
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

export interface ModelProviderOptions {
  /**
   * A connection string (the runtime role's) for a dedicated LISTEN connection: on an activation's NOTIFY the
   * provider loads the new model at once, so the request that first sees it does not pay for the load. Without
   * it (or while that connection is down) the per-call version check alone keeps the model exact.
   */
  listenUrl?: string;
  /** Called after every reload, with the new version (tests, logs). */
  onReload?: (version: string, cause: 'request' | 'notify') => void;
  /** Called when the LISTEN connection fails (it is re-opened after `reconnectMs`). */
  onListenError?: (error: unknown) => void;
  reconnectMs?: number;
}

export type ModelProvider = (() => Promise<MatchModel>) & {
  /** The model as last read, without asking the database (for a caller that learns the active version otherwise). */
  cached(): MatchModel;
  /** The model of `version` when that is the cached one; otherwise a check, which reads the active model. */
  ofVersion(version: string): Promise<MatchModel>;
  close(): Promise<void>;
};

/**
 * The active model for a long-running process. It is read at start (installing the default if needed); then
 * every call checks the active row's version — one indexed single-row query that ships the parameters only
 * when the version differs from the cached one — so a request that starts after `model activate` (or an index
 * import that refreshed the term frequencies) has returned is scored by the new model, in every process.
 * Calls that arrive while a check is running share the next check (never one that started before they
 * arrived), so under load the checks are batched. If the check fails (database unreachable) the cached model
 * is used; the request cannot read candidates then anyway. With `listenUrl`, NOTIFY preloads the new model.
 */
export async function createModelProvider(db: Db, options: ModelProviderOptions = {}): Promise<ModelProvider> {
  let model = await ensureActiveModel(db);

  const check = async (cause: 'request' | 'notify'): Promise<MatchModel> => {
    const row = await db
      .selectFrom('match_models')
      .select(['version', sql<ModelParameters | null>`CASE WHEN version = ${model.version} THEN NULL ELSE parameters END`.as('parameters')])
      .where('active', '=', true)
      .modifyEnd(sql.raw(PREPARED_STATEMENT)) // on every request
      .executeTakeFirst();
    if (row?.parameters && row.version !== model.version) {
      model = { version: row.version, parameters: row.parameters };
      options.onReload?.(row.version, cause);
    }
    return model;
  };

  // Single flight with one follower: a caller joins the check that starts next, never one already running.
  let running: Promise<MatchModel> | undefined;
  let next: Promise<MatchModel> | undefined;
  const start = (cause: 'request' | 'notify'): Promise<MatchModel> => {
    const p = check(cause)
      .catch(() => model)
      .finally(() => {
        if (running === p) running = undefined;
      });
    running = p;
    return p;
  };
  const current = (cause: 'request' | 'notify'): Promise<MatchModel> => {
    if (!running) return start(cause);
    next ??= running.then(() => {
      next = undefined;
      return start(cause);
    });
    return next;
  };

  const listener = options.listenUrl ? listenForActivations(options.listenUrl, () => void current('notify'), options) : undefined;
  const provider = (() => current('request')) as ModelProvider;
  provider.cached = () => model;
  provider.ofVersion = (version) => (version === model.version ? Promise.resolve(model) : current('request'));
  provider.close = async () => {
    await listener?.close();
  };
  return provider;
}

/** A dedicated LISTEN connection that re-opens itself after a loss; each (re)connect also triggers a check. */
function listenForActivations(url: string, onChange: () => void, options: ModelProviderOptions): { close(): Promise<void> } {
  let closed = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  const retry = (error: unknown) => {
    options.onListenError?.(error);
    const dead = client;
    client = undefined;
    void dead?.end().catch(() => undefined);
    if (!closed && !timer) timer = setTimeout(connect, options.reconnectMs ?? 1_000).unref();
  };
  const connect = () => {
    timer = undefined;
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    c.on('notification', (message) => {
      if (message.channel === MODEL_CHANNEL) onChange();
    });
    c.on('error', (error) => {
      if (client === c) retry(error);
    });
    c.on('end', () => {
      if (client === c && !closed) retry(new Error('LISTEN connection ended'));
    });
    c.connect()
      .then(() => c.query(`LISTEN ${MODEL_CHANNEL}`))
      .then(() => onChange()) // an activation may have been missed while disconnected
      .catch((error: unknown) => {
        if (client === c) retry(error);
      });
  };
  connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

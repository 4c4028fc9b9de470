import { createHash } from 'node:crypto';
import type { Db, DbOrTx } from '../db/database.js';
import { activateModel, ensureActiveModel, saveModel } from './model-store.js';
import { normalizePerson } from '../matching/normalize.js';
import { termFrequencies } from '../matching/training.js';

/**
 * Term frequencies of names in the member index: how common each normalised family and given name is. The
 * model's exact-name weights are adjusted by them (a rare name agreeing says more), so they must follow the
 * index as it changes.
 */
export async function nameFrequencies(db: DbOrTx, column: 'family' | 'given'): Promise<{ table: Record<string, number>; floor: number }> {
  const rows = await db.selectFrom('members').select([column, db.fn.countAll<string>().as('n')]).groupBy(column).execute();
  const counts = new Map<string, number>();
  let total = 0;
  for (const row of rows) {
    const person = normalizePerson(column === 'family' ? { family: row[column] } : { given: row[column] });
    const key = column === 'family' ? person.family : person.given;
    const n = Number(row.n);
    total += n;
    if (key) counts.set(key, (counts.get(key) ?? 0) + n);
  }
  return termFrequencies(counts, total);
}

/**
 * Recomputes the name frequencies from the index and, when they differ from the active model's, saves and
 * activates the same model with the new tables — version `<model>+tf<hash>`, so the audit trail's model version
 * still names which frequencies scored a decision. Returns the active version afterwards.
 */
export async function refreshTermFrequencies(db: Db): Promise<{ version: string; changed: boolean }> {
  const active = await ensureActiveModel(db);
  const [family, given] = [await nameFrequencies(db, 'family'), await nameFrequencies(db, 'given')];
  const tables = { family: family.table, given: given.table, floor: Math.min(family.floor, given.floor) };
  const hash = createHash('sha256').update(JSON.stringify(tables)).digest('hex').slice(0, 8);
  const base = active.version.replace(/\+tf[0-9a-f]{8}$/, '');
  const version = `${base}+tf${hash}`;
  if (version === active.version) return { version, changed: false };
  await saveModel(db, { version, parameters: { ...active.parameters, termFrequencies: tables }, training: { derivedFrom: active.version, termFrequencies: 'member index', at: new Date().toISOString() } }, false);
  await activateModel(db, version);
  return { version, changed: true };
}

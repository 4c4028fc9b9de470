import { InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from '../../config.js';
import { openDatabase, type Db } from '../../db/database.js';
import { parseSystemValue } from '../../shared/system-value.js';
import { openIndexDatabase } from '../../../tools/evaluation/scratch-database.js';

/** What the command groups share: the database and scratch-index wrappers and option parsers. */

export async function withDb<T>(run: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl, 4);
  try {
    return await run(db, config);
  } finally {
    await db.destroy();
  }
}

export const systemValueOption = (text: string) => {
  const parsed = parseSystemValue(text);
  if (!parsed) throw new InvalidArgumentError('expected system|value');
  return parsed;
};

export const positiveInt = (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};

export interface IndexOptions {
  index: string;
  queries: string;
  truth?: string;
}

/** Loads the index roster into its own scratch database, runs `work`, closes. */
export async function withIndex<T>(options: IndexOptions, work: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { db } = await openIndexDatabase(config.databaseUrl, options.index, config.memberIdentifierSystem, (m) => console.error(m));
  try {
    return await work(db, config);
  } finally {
    await db.destroy();
  }
}

import { InvalidArgumentError, Option, type Command } from 'commander';
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

/**
 * `<noun> disable|enable <id>`: turns a registered party off or on. An unknown id is a usage error that names the
 * list command; success prints `disabled <id>` / `enabled <id>`.
 */
export function registerSwitch(parent: Command, noun: string, verb: 'disable' | 'enable', description: string, apply: (db: Db, id: string) => Promise<boolean>): void {
  parent
    .command(verb)
    .argument(`<${noun}-id>`)
    .description(description)
    .action((id: string) =>
      withDb(async (db) => {
        if (!(await apply(db, id))) throw new InvalidArgumentError(`no such ${noun}: ${id} (see \`member-match ${noun} list\`)`);
        console.log(`${verb}d ${id}`);
      }),
    );
}

export const systemValueOption = (text: string) => {
  const parsed = parseSystemValue(text);
  if (!parsed) throw new InvalidArgumentError('expected system|value');
  return parsed;
};

export const positiveInt = (text: string) => {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};

/** A parser for a whole number in [min, max], naming the range when the value is outside it. */
export const intInRange = (min: number, max: number) => (text: string) => {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
  return n;
};

/** An option whose value must be one of `choices` (commander names them when another is given). */
export const choiceOption = (flags: string, description: string, choices: readonly string[], defaultValue?: string) => {
  const option = new Option(flags, description).choices(choices);
  return defaultValue === undefined ? option : option.default(defaultValue);
};

/** --base and --token, for commands that call the service's staff API (review, links). */
export function staffApiOptions(command: Command): Command {
  return command
    .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
    .option('--token <token>', 'a staff token (default: $MEMBER_MATCH_STAFF_TOKEN; `member-match dev-idp token` in development)');
}

export const STAFF_TOKEN_HINT = 'staff tokens expire: get a new one (`member-match dev-idp token --user <you> --role <role>` in development) and pass it as --token or MEMBER_MATCH_STAFF_TOKEN';

/** The service base URL and staff token from --base/--token, PUBLIC_BASE_URL and MEMBER_MATCH_STAFF_TOKEN. */
export function staffApi(options: { base?: string; token?: string }): { base: string; token: string } {
  const token = options.token ?? process.env.MEMBER_MATCH_STAFF_TOKEN;
  if (!token) throw new InvalidArgumentError('give a staff token as --token or MEMBER_MATCH_STAFF_TOKEN (in development: `member-match dev-idp token --user <you> --role reviewer`)');
  return { base: (options.base ?? loadConfig().publicBaseUrl).replace(/\/+$/, ''), token };
}

export interface IndexOptions {
  index: string;
  queries: string;
  truth?: string;
}

/**
 * Loads the index roster into its own scratch database, runs `work`, closes — and says which database it
 * left behind (kept on purpose: the next run on the same roster reuses it) and how to remove it.
 */
export async function withIndex<T>(options: IndexOptions, work: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { db, url } = await openIndexDatabase(config.databaseUrl, options.index, config.memberIdentifierSystem, (m) => console.error(m));
  try {
    return await work(db, config);
  } finally {
    await db.destroy();
    console.error(`scratch database ${scratchName(url)} kept for the next run on this roster; \`member-match scratch clean\` removes it`);
  }
}

const scratchName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

import { sql } from 'kysely';
import type { Command } from 'commander';
import type { Db } from '../../db/database.js';
import { printTable } from '../output.js';
import { withDb } from './common.js';

/**
 * `eval` and `model train` load their index roster into a scratch database of its own, named
 * `<database>_eval_<roster sha>` (tools/evaluation/scratch-database.ts), and keep it so the next run on the same
 * roster skips the import. These commands list and remove them; the service's own database is never touched.
 */

interface ScratchDatabase {
  name: string;
  bytes: number;
  marker: string | null;
}

async function scratchDatabases(db: Db, serverDatabaseUrl: string): Promise<ScratchDatabase[]> {
  const base = decodeURIComponent(new URL(serverDatabaseUrl).pathname.replace(/^\//, '')) || 'member_match';
  // LIKE treats _ as a wildcard: escape the prefix, then require the 12-hex-digit digest exactly.
  const prefix = `${base}_eval_`.replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = await sql<{ name: string; bytes: string; marker: string | null }>`
    SELECT datname AS name, pg_database_size(oid)::text AS bytes, shobj_description(oid, 'pg_database') AS marker
    FROM pg_database WHERE datname LIKE ${`${prefix}%`} AND datname ~ '_eval_[0-9a-f]{12}$' ORDER BY datname`.execute(db);
  return rows.rows.map((r) => ({ name: r.name, bytes: Number(r.bytes), marker: r.marker }));
}

const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

export function registerScratchCommands(program: Command): void {
  const scratch = program.command('scratch').description('scratch databases that `eval` and `model train` leave for their next run');
  scratch
    .command('list')
    .description('the scratch evaluation databases on this server, with their size')
    .action(() =>
      withDb(async (db, config) => {
        const found = await scratchDatabases(db, config.databaseUrl);
        printTable(['DATABASE', 'SIZE', 'STATE'], found.map((d) => [d.name, megabytes(d.bytes), d.marker ? 'loaded' : 'interrupted import']));
      }),
    );
  scratch
    .command('clean')
    .description('drop every scratch evaluation database (the next `eval` or `model train` loads its roster again)')
    .option('--dry-run', 'only say what would be dropped')
    .action((options: { dryRun?: boolean }) =>
      withDb(async (db, config) => {
        const found = await scratchDatabases(db, config.databaseUrl);
        for (const d of found) {
          // WITH (FORCE): an interrupted run may still hold a connection.
          if (!options.dryRun) await sql.raw(`DROP DATABASE IF EXISTS "${d.name.replace(/"/g, '""')}" WITH (FORCE)`).execute(db);
          console.log(`${options.dryRun ? 'would drop' : 'dropped'} ${d.name} (${megabytes(d.bytes)})`);
        }
        const total = found.reduce((sum, d) => sum + d.bytes, 0);
        console.error(found.length === 0 ? 'no scratch databases' : `${found.length} scratch database(s), ${megabytes(total)}${options.dryRun ? ' (dry run: nothing dropped)' : ' freed'}`);
      }),
    );
}

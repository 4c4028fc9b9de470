import os from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { runIndexImport } from '../../batch/index-import.js';
import { listJobs, type JobOwner } from '../../batch/jobs.js';
import { loadConfig, type Config } from '../../config.js';
import { stat } from 'node:fs/promises';
import type { Db } from '../../db/database.js';
import { printTable } from '../output.js';
import { downloadResults, followRosterJob, progressLine, uploadRoster } from '../roster-client.js';
import { intInRange, withDb } from './common.js';

/** The operator at this command line, as a job owner: trusted by holding the database credentials. */
function localOperator(config: Config): JobOwner {
  const user = os.userInfo().username;
  return { actorClass: 'human', subject: `local:${user}`, clientId: `cli:${user}`, organization: config.ownOrganization, protocol: 'local', tokenJti: '', scopes: [] };
}

export function registerRosterCommands(program: Command): void {
  const roster = program.command('roster').description('the member index');
  roster
    .command('import')
    .argument('<file>', 'roster file: .csv (documented header) or .ndjson (FHIR Patient + Coverage); .gz accepted')
    .description('import or update members, as a tracked job: new, changed and (with --full) ended members; bad rows are reported by line and skipped')
    .option('--full', 'the file is the whole eligibility snapshot: members it does not carry have ended')
    .option('--force', 'import again a file this operator already imported')
    .option('--no-refresh-frequencies', 'keep the active model\'s name frequencies')
    .action((file: string, options: { full?: boolean; force?: boolean; refreshFrequencies: boolean }) =>
      withDb(async (db, config) => {
        await stat(file).catch(() => {
          throw new InvalidArgumentError(`no roster file at ${file}`);
        });
        const owner = localOperator(config);
        const progress = reportImportProgress(db, owner.clientId);
        const { job, created } = await runIndexImport(db, file, {
          memberIdentifierSystem: config.memberIdentifierSystem,
          owner,
          full: options.full ?? false,
          force: options.force ?? false,
          refreshFrequencies: options.refreshFrequencies,
        }).finally(progress.stop);
        if (!created) console.error(`this file was already imported by job ${job.id} (${job.state}); --force imports it again`);
        const { errors = [], ...counts } = (job.summary ?? {}) as { errors?: { line: number; reason: string }[] };
        console.log(JSON.stringify({ job: job.id, state: job.state, ...counts }));
        for (const error of errors) console.error(`line ${error.line}: ${error.reason}`);
        if (job.counts.rejected > errors.length) console.error(`… and ${job.counts.rejected - errors.length} more rejected rows`);
      }),
    );
  roster
    .command('jobs')
    .description('recent batch jobs (imports, reconciliations, bulk matches): state, progress, counts')
    .option('--limit <n>', 'how many (1-1000)', intInRange(1, 1000), 20)
    .option('--json', 'one JSON object a line instead of a table')
    .action((options: { limit: number; json?: boolean }) =>
      withDb(async (db) => {
        const jobs = await listJobs(db, options.limit);
        if (options.json) {
          for (const job of jobs) {
            console.log(JSON.stringify({ id: job.id, kind: job.kind, state: job.state, owner: job.owner.clientId, rows: job.totalRows, done: job.rowsDone, counts: job.counts, created: job.createdAt }));
          }
          return;
        }
        printTable(
          ['ID', 'KIND', 'STATE', 'OWNER', 'ROWS', 'DONE', 'COUNTS', 'CREATED'],
          jobs.map((job) => [job.id, job.kind, job.state, job.owner.clientId, job.totalRows, job.rowsDone, countsText(job.counts), job.createdAt]),
        );
      }),
    );
  roster
    .command('reconcile')
    .argument('<file>', 'the roster to reconcile: .csv (import format) or .ndjson (Patients); .gz accepted')
    .description('reconcile a roster against the member index through the API, as a workload: progress bar, then counts')
    .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
    .option('--token <token>', 'a workload access token with roster:reconcile (default: $MEMBER_MATCH_TOKEN)')
    .option('--results <file>', 'write the per-row results (NDJSON) to this file')
    .action(async (file: string, options: { base?: string; token?: string; results?: string }) => {
      const base = (options.base ?? loadConfig().publicBaseUrl).replace(/\/+$/, '');
      const token = options.token ?? process.env.MEMBER_MATCH_TOKEN;
      if (!token) throw new InvalidArgumentError('give --token or set MEMBER_MATCH_TOKEN (see `member-match workload token`)');
      const started = Date.now();
      const { job, created } = await uploadRoster(base, token, file);
      console.error(`${created ? 'job' : 'this roster was already uploaded: job'} ${job.id}, ${job.totalRows} rows`);
      const tty = process.stderr.isTTY;
      let lastDecile = -1;
      const final = await followRosterJob(base, token, job.id, (status) => {
        const line = progressLine(status, (Date.now() - started) / 1000);
        if (tty) process.stderr.write(`\r${line}`);
        else if (Math.floor(status.progress * 10) !== lastDecile) {
          lastDecile = Math.floor(status.progress * 10);
          console.error(line);
        }
      });
      if (tty) process.stderr.write('\n');
      console.log(JSON.stringify({ id: final.id, state: final.state, rows: final.totalRows, counts: final.counts, seconds: (Date.now() - started) / 1000 }));
      if (options.results) {
        await downloadResults(base, token, final.id, options.results);
        console.error(`results written to ${options.results}`);
      }
      if (final.state !== 'completed') process.exitCode = 1;
    });
}

/** `matched=3 review=1`: the non-zero counts. */
function countsText(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
}

/**
 * Progress of this operator's running import, on stderr (stdout keeps the one JSON summary): the importer
 * records rows done on its job row about once a second, which this reads back on its own connection. A
 * terminal gets one line rewritten in place; a log gets a line every 10 s.
 */
function reportImportProgress(db: Db, clientId: string): { stop: () => void } {
  const started = new Date();
  const tty = process.stderr.isTTY;
  let lastLogged = 0;
  let shown = false;
  const timer = setInterval(() => {
    void db
      .selectFrom('batch_jobs')
      .select(['rows_done'])
      .where('kind', '=', 'index-import')
      .where('state', '=', 'running')
      .where('created_at', '>=', new Date(started.getTime() - 1_000))
      .where('owner_client_id', '=', clientId)
      .orderBy('created_at', 'desc')
      .executeTakeFirst()
      .then((row) => {
        if (!row) return;
        const seconds = (Date.now() - started.getTime()) / 1000;
        const rows = Number(row.rows_done);
        const line = `importing: ${rows.toLocaleString('en-US')} rows read, ${Math.round(rows / Math.max(seconds, 0.001)).toLocaleString('en-US')} rows/s, ${Math.round(seconds)} s`;
        if (tty) {
          process.stderr.write(`\r${line}\x1b[K`);
          shown = true;
        } else if (Date.now() - lastLogged >= 10_000) {
          lastLogged = Date.now();
          console.error(line);
        }
      })
      .catch(() => undefined);
  }, 1_000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      if (shown) process.stderr.write('\n');
    },
  };
}

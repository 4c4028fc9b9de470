import os from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { runIndexImport } from '../../batch/index-import.js';
import { listJobs, type JobOwner } from '../../batch/jobs.js';
import { loadConfig, type Config } from '../../config.js';
import { downloadResults, followRosterJob, progressLine, uploadRoster } from '../roster-client.js';
import { withDb } from './common.js';

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
        const { job, created } = await runIndexImport(db, file, {
          memberIdentifierSystem: config.memberIdentifierSystem,
          owner: localOperator(config),
          full: options.full ?? false,
          force: options.force ?? false,
          refreshFrequencies: options.refreshFrequencies,
        });
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
    .option('--limit <n>', 'how many', '20')
    .action((options: { limit: string }) =>
      withDb(async (db) => {
        for (const job of await listJobs(db, Number(options.limit))) {
          console.log(JSON.stringify({ id: job.id, kind: job.kind, state: job.state, owner: job.owner.clientId, rows: job.totalRows, done: job.rowsDone, counts: job.counts, created: job.createdAt }));
        }
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

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { JWK } from 'jose';
import { loadConfig } from '../../config.js';
import { disableWorkload, enableWorkload, listWorkloads, registerWorkload, WORKLOAD_SCOPES } from '../../identity/workloads.js';
import { printTable } from '../output.js';
import { exchangeWorkloadToken, mintWorkloadToken } from '../workload-tools.js';
import { registerSwitch, withDb } from './common.js';

export function registerWorkloadCommands(program: Command): void {
  const workload = program.command('workload').description('trusted workload identities: batch jobs that exchange their platform JWT for an access token (RFC 8693)');
  workload
    .command('add')
    .requiredOption('--name <name>', 'what the workload is, e.g. "nightly roster reconcile"')
    .requiredOption('--issuer <url>', "the workload identity issuer (the token's iss)")
    .requiredOption('--subject <sub>', "the workload's subject in that issuer's tokens (the token's sub)")
    .requiredOption('--audience <aud>', 'the audience its tokens must carry for us')
    .requiredOption('--jwks <file|url>', "the issuer's public JWKS: a file, or an https URL")
    .option('--scopes <scopes>', 'space-separated scopes to grant', WORKLOAD_SCOPES.join(' '))
    .description('trust a workload; prints its workload id')
    .action((options: { name: string; issuer: string; subject: string; audience: string; jwks: string; scopes: string }) =>
      withDb(async (db) => {
        const scopes = options.scopes.split(/\s+/).filter(Boolean);
        const unknown = scopes.filter((s) => !(WORKLOAD_SCOPES as readonly string[]).includes(s));
        if (unknown.length > 0) throw new InvalidArgumentError(`unknown workload scope(s): ${unknown.join(' ')}`);
        const keys = /^https:\/\//.test(options.jwks) ? { jwksUrl: options.jwks } : { jwks: JSON.parse(await readFile(options.jwks, 'utf8')) as { keys: JWK[] } };
        const created = await registerWorkload(db, { name: options.name, issuer: options.issuer, subject: options.subject, audience: options.audience, scopes, ...keys });
        console.log(created.workloadId);
      }),
    );
  workload
    .command('list')
    .description('trusted workloads')
    .action(() =>
      withDb(async (db) => {
        printTable(
          ['WORKLOAD ID', 'STATE', 'NAME', 'ISSUER', 'SUBJECT', 'SCOPES'],
          (await listWorkloads(db)).map((w) => [w.workloadId, w.enabled ? 'enabled' : 'disabled', w.name, w.issuer, w.subject, w.scopes.join(' ')]),
        );
      }),
    );
  registerSwitch(workload, 'workload', 'disable', 'stop trusting a workload: new exchanges refused at once, issued tokens stop working within 5 s', disableWorkload);
  registerSwitch(workload, 'workload', 'enable', 'trust a disabled workload again: its next exchange succeeds (re-adding it would clash with the one kept)', enableWorkload);
  workload
    .command('mint')
    .description('(demo) act as the workload identity issuer: sign the JWT a platform would give the job')
    .requiredOption('--key <file>', 'the issuer private JWK (from `partner keys`)')
    .requiredOption('--issuer <url>')
    .requiredOption('--subject <sub>')
    .requiredOption('--audience <aud>')
    .action(async (options: { key: string; issuer: string; subject: string; audience: string }) => {
      const privateJwk = JSON.parse(await readFile(options.key, 'utf8')) as JWK;
      console.log(await mintWorkloadToken({ ...options, privateJwk }));
    });
  workload
    .command('token')
    .description('exchange a workload JWT (read from --subject-token or stdin) for an access token and print it')
    .option('--subject-token <jwt>')
    .option('--scope <scopes>')
    .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
    .action(async (options: { subjectToken?: string; scope?: string; base?: string }) => {
      const config = loadConfig();
      const tokenUrl = options.base ? `${options.base.replace(/\/+$/, '')}/oauth/token` : config.tokenUrl;
      const subjectToken = options.subjectToken ?? readFileSync(0, 'utf8').trim();
      const result = await exchangeWorkloadToken(tokenUrl, subjectToken, options.scope);
      if (result.status !== 200) {
        console.error(JSON.stringify(result.body));
        process.exitCode = 1;
        return;
      }
      console.log(result.body.access_token);
    });
}

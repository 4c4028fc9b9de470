import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { JWK } from 'jose';
import { loadConfig, type Config } from '../config.js';
import { parseSystemValue } from '../shared/system-value.js';
import { openDatabase, type Db, type Tx } from '../db/database.js';
import { appendAuditEvent, verifyAuditChain } from '../audit/audit-trail.js';
import { clearOptOut, listOptOuts, recordOptOut } from '../consent/opt-out-registry.js';
import { findMemberSummaryByMemberId } from '../members/member-index.js';
import { disablePartnerClient, listPartnerClients, PARTNER_SCOPES, registerPartnerClient } from '../identity/partner-clients.js';
import { runIndexImport } from '../batch/index-import.js';
import { listJobs, type JobOwner } from '../batch/jobs.js';
import os from 'node:os';
import { evaluate, formatReport, sweepThresholds, type QueryOutcome } from '../../tools/evaluation/evaluate.js';
import { febrlToEvaluationFiles } from '../../tools/evaluation/febrl.js';
import { readTruth } from '../../tools/evaluation/files.js';
import { openIndexDatabase } from '../../tools/evaluation/scratch-database.js';
import { trainModel } from '../../tools/evaluation/train.js';
import { activateModel, DEFAULT_MODEL_FILE, ensureActiveModel, listModels, readModelFile, saveModel } from '../matching/model-repository.js';
import { runSynth } from '../../tools/synth/index.js';
import { loadPolicyEngine } from '../policy/cedar-policy.js';
import { POLICY_TESTS_FILE, readPolicyTests, runPolicyTests } from '../policy/policy-tests.js';
import { hrexExampleRequest } from './hrex-example.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion } from './partner-tools.js';
import { downloadResults, followRosterJob, progressLine, uploadRoster } from './roster-client.js';
import { exchangeForAgentToken, exchangeWorkloadToken, mintWorkloadToken } from './workload-tools.js';
import { disableAgent, listAgents, registerAgent } from '../identity/agents.js';
import { disableWorkload, listWorkloads, registerWorkload, WORKLOAD_SCOPES } from '../identity/workloads.js';
import { devIdpToken, HUMAN_ROLES } from '../identity/humans.js';

/** `member-match <command>`: operator and demo commands. Every command reads the same configuration as the server. */

async function withDb<T>(run: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl, 4);
  try {
    return await run(db, config);
  } finally {
    await db.destroy();
  }
}

/** The operator at this command line, as a job owner: trusted by holding the database credentials. */
function localOperator(config: Config): JobOwner {
  const user = os.userInfo().username;
  return { actorClass: 'human', subject: `local:${user}`, clientId: `cli:${user}`, organization: config.ownOrganization, protocol: 'local', tokenJti: '', scopes: [] };
}

const systemValueOption = (text: string) => {
  const parsed = parseSystemValue(text);
  if (!parsed) throw new InvalidArgumentError('expected system|value');
  return parsed;
};

const program = new Command('member-match').description('HRex $member-match service: operator commands');

program
  .command('migrate')
  .description('create the database if needed and apply pending migrations')
  .action(() => withDb(async () => console.log('database is up to date')));

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

const client = program.command('client').description('partner payer clients (SMART Backend Services)');
client
  .command('add')
  .requiredOption('--name <name>', 'display name of the partner')
  .requiredOption('--org <system|value>', "the partner's organisation identifier, e.g. http://hl7.org/fhir/sid/us-npi|0123456789", systemValueOption)
  .requiredOption('--jwks <file|url>', "the partner's public JWKS: a file, or an https URL we fetch keys from")
  .option('--scopes <scopes>', 'space-separated scopes to grant', PARTNER_SCOPES.join(' '))
  .option('--mtls', 'require mutual TLS: tokens are issued only over the TLS listener and bound to the client certificate (RFC 8705)')
  .description('register a partner; prints its client id')
  .action((options: { name: string; org: { system: string; value: string }; jwks: string; scopes: string; mtls?: boolean }) =>
    withDb(async (db) => {
      const scopes = options.scopes.split(/\s+/).filter(Boolean);
      const unknown = scopes.filter((s) => !(PARTNER_SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0) throw new InvalidArgumentError(`unknown scopes: ${unknown.join(' ')}`);
      const isUrl = /^https?:\/\//.test(options.jwks);
      const jwks = isUrl ? undefined : (JSON.parse(await readFile(options.jwks, 'utf8')) as { keys: JWK[] });
      if (jwks && (!Array.isArray(jwks.keys) || jwks.keys.some((k) => !k.kid || k.d))) {
        throw new InvalidArgumentError('the JWKS must hold public keys, each with a kid');
      }
      const created = await registerPartnerClient(db, {
        name: options.name,
        organization: options.org,
        scopes,
        ...(jwks ? { jwks } : { jwksUrl: options.jwks }),
        tlsBound: !!options.mtls,
      });
      console.log(created.clientId);
    }),
  );
client
  .command('list')
  .description('list partner clients')
  .action(() =>
    withDb(async (db) => {
      for (const c of await listPartnerClients(db)) {
        console.log(
          [c.clientId, c.enabled ? 'enabled' : 'disabled', `${c.organization.system}|${c.organization.value}`, c.scopes.join(' '), c.name].join('\t'),
        );
      }
    }),
  );
client
  .command('disable')
  .argument('<client-id>')
  .description('disable a client: new tokens are refused at once, issued tokens stop working within 5 seconds')
  .action((clientId: string) =>
    withDb(async (db) => {
      if (!(await disablePartnerClient(db, clientId))) {
        console.error('no such client');
        process.exitCode = 1;
        return;
      }
      console.log(`disabled ${clientId}`);
    }),
  );

program
  .command('audit')
  .description('the audit trail')
  .command('verify')
  .description('walk the hash chain; exit 1 and name the first broken row if it was tampered with')
  .action(() =>
    withDb(async (db) => {
      const result = await verifyAuditChain(db);
      if (result.ok) {
        console.log(`audit chain intact: ${result.events} events`);
      } else {
        console.error(`audit chain broken at seq ${result.firstBrokenSeq} (${result.problem}) after ${result.events - 1} good events`);
        process.exitCode = 1;
      }
    }),
  );

const partner = program.command('partner').description("play a partner payer's side, for demos and testing");
partner
  .command('keys')
  .requiredOption('--out <dir>', 'folder to write private.jwk.json and jwks.json into')
  .option('--alg <alg>', 'ES384 or RS384', 'ES384')
  .description('generate a partner key pair')
  .action(async (options: { out: string; alg: 'ES384' | 'RS384' }) => {
    const pair = await generatePartnerKeyPair(options.alg);
    await mkdir(options.out, { recursive: true });
    await writeFile(path.join(options.out, 'private.jwk.json'), JSON.stringify(pair.privateJwk, null, 2), { mode: 0o600 });
    await writeFile(path.join(options.out, 'jwks.json'), JSON.stringify(pair.publicJwks, null, 2));
    console.log(`wrote ${path.join(options.out, 'private.jwk.json')} and ${path.join(options.out, 'jwks.json')}`);
  });
partner
  .command('token')
  .requiredOption('--client-id <id>')
  .requiredOption('--key <file>', 'private JWK written by `partner keys`')
  .option('--scope <scopes>', 'scopes to request', PARTNER_SCOPES.join(' '))
  .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
  .description('sign a client assertion, exchange it at /oauth/token and print the access token')
  .action(async (options: { clientId: string; key: string; scope: string; base?: string }) => {
    const config = loadConfig();
    const tokenUrl = options.base ? `${options.base.replace(/\/+$/, '')}/oauth/token` : config.tokenUrl;
    const privateJwk = JSON.parse(await readFile(options.key, 'utf8')) as JWK;
    const assertion = await signClientAssertion({ clientId: options.clientId, tokenUrl, privateJwk });
    const result = await requestAccessToken(tokenUrl, assertion, options.scope);
    if (result.status !== 200) {
      console.error(JSON.stringify(result.body));
      process.exitCode = 1;
      return;
    }
    console.log(result.body.access_token);
  });

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
      for (const w of await listWorkloads(db)) console.log(`${w.workloadId}\t${w.enabled ? 'enabled' : 'disabled'}\t${w.name}\t${w.issuer}\t${w.subject}\t${w.scopes.join(' ')}`);
    }),
  );
workload
  .command('disable')
  .argument('<workload-id>')
  .description('stop trusting a workload: new exchanges refused at once, issued tokens stop working within 5 s')
  .action((id: string) =>
    withDb(async (db) => {
      if (!(await disableWorkload(db, id))) throw new InvalidArgumentError('no such workload');
      console.log(`disabled ${id}`);
    }),
  );
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

const agent = program.command('agent').description('AI or automation agents acting for a delegator (RFC 8693 delegation)');
agent
  .command('add')
  .requiredOption('--name <name>')
  .requiredOption('--jwks <file>', "the agent's public JWKS")
  .requiredOption('--tools <scopes>', 'space-separated tool scopes the agent may ever act with')
  .description('register an agent; prints its agent id')
  .action((options: { name: string; jwks: string; tools: string }) =>
    withDb(async (db) => {
      const jwks = JSON.parse(await readFile(options.jwks, 'utf8')) as { keys: JWK[] };
      console.log((await registerAgent(db, { name: options.name, jwks, toolScopes: options.tools.split(/\s+/).filter(Boolean) })).agentId);
    }),
  );
agent
  .command('list')
  .action(() =>
    withDb(async (db) => {
      for (const a of await listAgents(db)) console.log(`${a.agentId}\t${a.enabled ? 'enabled' : 'disabled'}\t${a.name}\t${a.toolScopes.join(' ')}`);
    }),
  );
agent
  .command('disable')
  .argument('<agent-id>')
  .description('stop an agent: new delegations refused at once, its tokens within 5 s')
  .action((id: string) =>
    withDb(async (db) => {
      if (!(await disableAgent(db, id))) throw new InvalidArgumentError('no such agent');
      console.log(`disabled ${id}`);
    }),
  );
agent
  .command('token')
  .description("(demo) play the agent: exchange a delegator's access token (stdin or --subject-token) for a delegated token")
  .requiredOption('--agent-id <id>')
  .requiredOption('--key <file>', "the agent's private JWK")
  .option('--subject-token <token>')
  .option('--scope <scopes>')
  .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
  .action(async (options: { agentId: string; key: string; subjectToken?: string; scope?: string; base?: string }) => {
    const config = loadConfig();
    const tokenUrl = options.base ? `${options.base.replace(/\/+$/, '')}/oauth/token` : config.tokenUrl;
    const privateJwk = JSON.parse(await readFile(options.key, 'utf8')) as JWK;
    const actorToken = await signClientAssertion({ clientId: options.agentId, tokenUrl, privateJwk });
    const subjectToken = options.subjectToken ?? readFileSync(0, 'utf8').trim();
    const result = await exchangeForAgentToken(tokenUrl, subjectToken, actorToken, options.scope);
    if (result.status !== 200) {
      console.error(JSON.stringify(result.body));
      process.exitCode = 1;
      return;
    }
    console.log(result.body.access_token);
  });

program
  .command('dev-idp')
  .description('development identity provider for staff (refuses to run unless DEV_MODE=true)')
  .command('token')
  .requiredOption('--user <name>', 'the staff member (token subject)')
  .option('--role <role>', `a role: ${HUMAN_ROLES.join(', ')} (repeatable)`, (role: string, roles: string[]) => [...roles, role], [] as string[])
  .description('print an OpenID Connect ID token for a staff member, valid for an hour')
  .action((options: { user: string; role: string[] }) =>
    withDb(async (db, config) => {
      const unknown = options.role.filter((r) => !(HUMAN_ROLES as readonly string[]).includes(r));
      if (unknown.length > 0) throw new InvalidArgumentError(`unknown role(s): ${unknown.join(', ')}`);
      if (!config.devMode) throw new InvalidArgumentError('the development identity provider runs only with DEV_MODE=true');
      console.log(await devIdpToken(db, config, options.user, options.role));
    }),
  );

program
  .command('demo')
  .description('demo material')
  .command('request')
  .option('--recipient <system|value>', 'consent recipient (the partner organisation)', systemValueOption)
  .option('--policy <policy>', 'consent policy: sensitive or regular', 'sensitive')
  .option('--birth-date <date>', "replace the member's birth date (e.g. a typo that needs a human reviewer)")
  .description('print the HL7 HRex example $member-match request with its consent period moved to today')
  .action((options: { recipient?: { system: string; value: string }; policy: 'regular' | 'sensitive'; birthDate?: string }) => {
    const request = hrexExampleRequest({ policy: options.policy, ...(options.recipient ? { recipient: options.recipient } : {}) });
    if (options.birthDate) (request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as { birthDate?: string }).birthDate = options.birthDate;
    console.log(JSON.stringify(request, null, 2));
  });

const positiveInt = (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};

program
  .command('synth')
  .description('write a synthetic index roster, query set and truth file (deterministic for a seed)')
  .requiredOption('--members <n>', 'members in the index roster', positiveInt)
  .requiredOption('--queries <n>', 'queries to generate', positiveInt)
  .option('--seed <n>', 'random seed', positiveInt, 1)
  .requiredOption('--out <dir>', 'output folder (roster.csv, queries.ndjson, truth.csv)')
  .action(async (options: { members: number; queries: number; seed: number; out: string }) => {
    const summary = await runSynth(options);
    console.log(JSON.stringify(summary));
  });

program
  .command('febrl')
  .description('convert a FEBRL file (originals → index roster, duplicates → queries, truth) for `eval`')
  .argument('<file>', 'FEBRL CSV, e.g. fixtures/febrl3.csv')
  .requiredOption('--out <dir>', 'output folder')
  .action(async (file: string, options: { out: string }) => {
    console.log(JSON.stringify(await febrlToEvaluationFiles(file, options.out)));
  });

interface IndexOptions {
  index: string;
  queries: string;
  truth?: string;
}

/** Loads the index roster into its own scratch database, runs `work`, closes. */
async function withIndex<T>(options: IndexOptions, work: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { db } = await openIndexDatabase(config.databaseUrl, options.index, config.memberIdentifierSystem, (m) => console.error(m));
  try {
    return await work(db, config);
  } finally {
    await db.destroy();
  }
}

program
  .command('eval')
  .description('measure matching accuracy: the API\'s resolution path over a query set with known answers')
  .requiredOption('--index <roster>', 'index roster (CSV or NDJSON), loaded into a scratch database of its own')
  .requiredOption('--queries <file>', 'queries.ndjson')
  .requiredOption('--truth <file>', 'truth.csv')
  .option('--model <file>', 'a model JSON file (default: the shipped fixtures/models/default.json)')
  .option('--json', 'print the report as JSON')
  .option('--outcomes <file>', 'also write every query\'s decision (references, levels, weights; no demographics) as NDJSON')
  .option('--sweep', 'also re-decide every query over a grid of thresholds and print the trade-off')
  .action((options: IndexOptions & { truth: string; model?: string; json?: boolean; outcomes?: string; sweep?: boolean }) =>
    withIndex(options, async (db, config) => {
      const model = readModelFile(options.model ?? DEFAULT_MODEL_FILE);
      const outcomes: QueryOutcome[] = [];
      // Outcomes are recorded with the lowest lower threshold of the sweep, so every candidate a grid point
      // could act on is kept.
      const thresholds = options.sweep ? { ...config.matchThresholds, lower: Math.min(0.01, config.matchThresholds.lower) } : config.matchThresholds;
      const report = await evaluate(db, { model, thresholds, blockCap: config.blockCap }, options.queries, await readTruth(options.truth), {
        onOutcome: (o) => outcomes.push(o),
      });
      if (options.outcomes) await writeFile(options.outcomes, outcomes.map((o) => JSON.stringify(o)).join('\n') + '\n');
      if (options.sweep) {
        console.log('upper      lower  margin  false-matches  auto-recall  recall(auto+review)  review-rate');
        for (const { thresholds: t, report: r } of sweepThresholds(outcomes, thresholdGrid())) {
          const wrong = r.falseMatches.memberConfusedWithMember + r.falseMatches.nonMemberMatched;
          console.log(`${String(t.upper).padEnd(10)} ${String(t.lower).padEnd(6)} ${String(t.marginBits).padEnd(7)} ${String(wrong).padEnd(14)} ${(r.metrics.autoRecall * 100).toFixed(2).padEnd(12)} ${(r.metrics.recallAutoPlusReview * 100).toFixed(2).padEnd(20)} ${(r.metrics.reviewRate * 100).toFixed(2)}`);
        }
      }
      console.log(options.json ? JSON.stringify({ modelVersion: model.version, thresholds: config.matchThresholds, ...report }, null, 2) : `model ${model.version}\n${formatReport(report)}`);
    }),
  );

const consent = program.command('consent').description("the consent registry: members' own opt-outs, which override any partner consent");

/** Changes a member's registry entry and writes its audit event in one transaction. */
async function changeOptOut(memberId: string, change: (trx: Tx, memberUuid: string) => Promise<string>): Promise<void> {
  await withDb(async (db) => {
    const member = await findMemberSummaryByMemberId(db, memberId);
    if (!member) throw new InvalidArgumentError('no member with that member id');
    const reasonCode = await db.transaction().execute(async (trx) => {
      const reason = await change(trx, member.id);
      await appendAuditEvent(trx, { operation: 'consent-registry', outcome: 'success', reasonCode: reason, memberRef: member.id, details: { source: 'cli' } });
      return reason;
    });
    console.log(reasonCode);
  });
}

consent
  .command('opt-out')
  .argument('<member-id>')
  .option('--revoke', 'record a revocation of a consent the member gave, rather than an opt-out')
  .description('stop all payer-to-payer disclosure for a member: matches answer 422 member-opted-out, reads 404')
  .action((memberId: string, options: { revoke?: boolean }) =>
    changeOptOut(memberId, async (trx, uuid) => {
      const status = options.revoke ? 'revoked' : 'opted-out';
      await recordOptOut(trx, uuid, status, 'cli');
      return status;
    }),
  );
consent
  .command('opt-in')
  .argument('<member-id>')
  .description("remove a member's opt-out or revocation")
  .action((memberId: string) => changeOptOut(memberId, async (trx, uuid) => ((await clearOptOut(trx, uuid)) ? 'opted-in' : 'unchanged')));
consent
  .command('list')
  .description('members who opted out or revoked, newest first')
  .action(() =>
    withDb(async (db) => {
      for (const row of await listOptOuts(db)) console.log(`${row.member_id}\t${row.status}\t${row.source}\t${row.recorded_at.toISOString()}`);
    }),
  );

const policy = program.command('policy').description('authorization policy (Cedar, src/policy/cedar)');
policy
  .command('test')
  .option('--file <file>', 'a policy test table', POLICY_TESTS_FILE)
  .description('run the policy test table against the policy set; exit 1 on any unexpected decision')
  .action((options: { file: string }) => {
    const engine = loadPolicyEngine();
    const results = runPolicyTests(engine, readPolicyTests(options.file));
    console.log(`policy set ${engine.version}`);
    for (const r of results) console.log(`${r.passed ? 'ok  ' : 'FAIL'} ${r.name} → ${r.got.decision} (${r.got.policies.join(', ') || 'no policy'}; ${r.got.reason})`);
    const failed = results.filter((r) => !r.passed).length;
    console.log(`${results.length - failed} passed, ${failed} failed`);
    if (failed > 0) process.exitCode = 1;
  });

function thresholdGrid() {
  const grid = [];
  for (const upper of [0.999, 0.9999, 0.99999, 0.999999, 0.9999999]) {
    for (const lower of [0.5, 0.99, 0.999, 0.9999, 0.99999]) {
      if (lower >= upper) continue;
      for (const marginBits of [3, 6, 10]) grid.push({ upper, lower, marginBits });
    }
  }
  return grid;
}

const model = program.command('model').description('Fellegi–Sunter matching models');
model
  .command('train')
  .description('estimate u from random member pairs and m by EM over blocked pairs (or from labelled pairs with --truth)')
  .requiredOption('--index <roster>', 'index roster, loaded into a scratch database of its own')
  .requiredOption('--queries <file>', 'queries.ndjson whose blocked pairs train m')
  .option('--truth <file>', 'truth.csv: fit m from labelled pairs instead of EM')
  .option('--seed <n>', 'random seed for the u sample', positiveInt, 1)
  .requiredOption('--out <file>', 'where to write the model JSON')
  .action((options: IndexOptions & { seed: number; out: string }) =>
    withIndex(options, async (db, config) => {
      const trained = await trainModel(db, {
        queriesFile: options.queries,
        truth: options.truth ? await readTruth(options.truth) : undefined,
        seed: options.seed,
        blockCap: config.blockCap,
        log: (m) => console.error(m),
      });
      await writeFile(options.out, `${JSON.stringify(trained, null, 2)}\n`);
      console.log(trained.version);
    }),
  );
model
  .command('load')
  .argument('<file>', 'a model JSON file written by `model train`')
  .option('--activate', 'make it the active model')
  .description('store a model in the service database')
  .action((file: string, options: { activate?: boolean }) =>
    withDb(async (db) => {
      const stored = readModelFile(file);
      await db.transaction().execute((trx) => saveModel(trx, stored, !!options.activate));
      console.log(`${stored.version}${options.activate ? ' (active)' : ''}`);
    }),
  );
model
  .command('activate')
  .argument('<version>')
  .description('make a stored model the active one (servers pick it up within 30 s)')
  .action((version: string) => withDb((db) => db.transaction().execute((trx) => activateModel(trx, version))));
model
  .command('list')
  .description('stored models, newest first')
  .action(() =>
    withDb(async (db) => {
      await ensureActiveModel(db);
      for (const m of await listModels(db)) console.log(`${m.active ? '*' : ' '} ${m.version}  ${m.created_at.toISOString()}  ${JSON.stringify(m.training)}`);
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  const e = error as { message?: string; name?: string };
  console.error(`member-match: ${e?.name === 'InvalidArgumentError' || e?.name === 'ConfigError' ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? ''}`}`);
  process.exitCode = 1;
});

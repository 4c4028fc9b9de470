/**
 * npm run bench:batch [-- --members N] [--rows R] [--bulk B] [--workers W]
 *
 * Batch throughput end to end, through the API and a separate worker process, over a synthetic index
 * (default 1,000,000 members, `member-match synth`, seed 2027, loaded into a scratch database named after the
 * roster's content so later runs reuse it):
 *
 *  1. roster reconciliation: a workload uploads an R-row roster (default 100,000: the synthetic queries —
 *     members with their hazards, and non-members — written in the roster import format) and follows the
 *     job to the end. Prints progress while it runs, then rows per second from the start of the upload to the
 *     job's completion, the upload time, counts by outcome, and the worker's peak resident memory.
 *  2. PDex $bulk-member-match of B members (default 1,000) by a partner: kick-off to 200, the same figures.
 *
 * The API runs with RUN_WORKERS=false and the workers alone (`src/worker.ts`, W processes, default 1) with the
 * default concurrency, so each worker's memory is its own.
 *
 * Before it starts it prints the machine's load average; at the end it uploads the same roster file, and posts the
 * same bulk body, to a bare Express endpoint (bench/baseline.ts) and prints each figure's ratio to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ParametersParameter } from 'fhir/r4.js';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion } from '../src/cli/partner-tools.js';
import { followRosterJob, progressLine, uploadRoster } from '../src/cli/roster-client.js';
import { exchangeWorkloadToken, mintWorkloadToken } from '../src/cli/workload-tools.js';
import { readQueries } from '../tools/evaluation/files.js';
import { openIndexDatabase } from '../tools/evaluation/scratch-database.js';
import { offeredPerson, parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { registerWorkload } from '../src/identity/workloads.js';
import { ROSTER_DATA_COLUMNS } from '../src/members/roster-format/columns.js';
import { runSynth } from '../tools/synth/index.js';
import { csvLine, ROSTER_HEADER } from '../tools/synth/output.js';
import { bareJsonSeconds, bareUploadSeconds, printLoad, printMachine, ratioLine, vacuumScratch } from './baseline.js';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '1000000' },
    rows: { type: 'string', default: '100000' },
    bulk: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '1' },
  },
});
const members = Number(values.members);
const rows = Number(values.rows);
const bulkMembers = Number(values.bulk);
/** How often the job's status is polled: the measured duration is at most this much late. */
const POLL_MS = 100;
const workerCount = Number(values.workers);
const partnerOrg = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };
const port = 19000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
const children: ChildProcess[] = [];

/** The synthetic queries as a roster in the import format (the person each query asks about, one per row). */
async function writeReconcileRoster(queriesFile: string, file: string, limit: number): Promise<void> {
  const out = createWriteStream(file);
  out.write(ROSTER_HEADER);
  let n = 0;
  for await (const query of readQueries(queriesFile)) {
    if (n >= limit) break;
    let person;
    try {
      person = offeredPerson(parseMemberMatchRequest(query.parameters));
    } catch {
      continue;
    }
    const id = person.identifiers?.[0] ?? `Q${n}`;
    const fields: Record<string, string | undefined> = {
      member_id: id,
      given: person.given,
      middle: person.middle,
      family: person.family,
      suffix: person.suffix,
      birth_date: person.birthDate,
      gender: person.sex,
      address_line: person.addressLine,
      city: person.city,
      state: person.state,
      postal_code: person.postalCode,
      phone: person.phone,
      email: person.email,
      coverage_id: id,
    };
    if (!out.write(csvLine(ROSTER_DATA_COLUMNS.map((c) => fields[c] ?? '')))) await once(out, 'drain');
    n++;
  }
  out.end();
  await once(out, 'finish');
}

/** Peak resident memory (VmHWM) of a process, in MiB. */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** CPU seconds a process has used so far (user + system). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
}

function start(script: string, env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  printMachine();
  // The first R of 100,000 synthetic queries (more if R is larger), so a shorter run reuses the same index.
  const queryCount = Math.max(rows, 100_000);
  const dir = path.resolve('bench', 'out', `synth-${members}-${queryCount}`);
  if (!existsSync(path.join(dir, 'truth.csv'))) {
    const started = Date.now();
    await runSynth({ members, queries: queryCount, seed: 2027, out: dir });
    console.log(`synthetic index and queries written to ${dir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const rosterFile = path.join(dir, `reconcile-${rows}.csv`);
  if (!existsSync(rosterFile)) await writeReconcileRoster(path.join(dir, 'queries.ndjson'), rosterFile, rows);

  const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/member_match';
  const { db, url: databaseUrl } = await openIndexDatabase(serverUrl, path.join(dir, 'roster.csv'), 'http://example.org/old-payer/identifiers/member', console.log);
  try {
    const env = {
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: 'warn',
      REDIS_KEY_PREFIX: `mm-bench-batch-${port}:`,
      // The guards still run (and their Redis round trips are measured) but never trip: a bench client sends
      // thousands of members, many matching nobody or going to review.
      RATE_LIMIT_PER_MINUTE: '1000000',
      BRUTE_FORCE_UNMATCHED: '1000000',
      BRUTE_FORCE_CARD_VARIANTS: '1000000',
      BRUTE_FORCE_BIRTH_DATE_VARIANTS: '1000000',
      REVIEW_CASES_PER_HOUR: '1000000',
      REVIEW_CASES_PER_HOUR_INTERNAL: '1000000',
      METRICS_PORT: '0',
    };
    const api = start('src/main.ts', { ...env, RUN_WORKERS: 'false', WEB_CONCURRENCY: '1' });
    // BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the workers alone.
    const workers = Array.from({ length: workerCount }, () => start('src/worker.ts', env, (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean)));
    const workersCpu = () => workers.reduce((sum, w) => sum + cpuSeconds(w.pid!), 0);
    const workersPeakRss = () => workers.map((w) => peakRssMiB(w.pid!).toFixed(0)).join(' + ');
    for (let i = 0; ; i++) {
      if (i > 150) throw new Error('server did not start');
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    // 1. Roster reconciliation, as a workload.
    await vacuumScratch(db);
    const issuerKeys = await generatePartnerKeyPair('ES384');
    const subject = `bench-${randomBytes(4).toString('hex')}`; // a fresh workload: its upload is a new job
    await registerWorkload(db, { name: subject, issuer: 'https://bench.invalid', subject, audience: 'member-match', jwks: issuerKeys.publicJwks, scopes: ['roster:reconcile'] });
    const platformToken = await mintWorkloadToken({ issuer: 'https://bench.invalid', subject, audience: 'member-match', privateJwk: issuerKeys.privateJwk, expiresIn: 3_600 });
    const workloadToken = (await exchangeWorkloadToken(`${base}/oauth/token`, platformToken, 'roster:reconcile')).body.access_token as string;
    const cpuBefore = { worker: workersCpu(), api: cpuSeconds(api.pid!), machine: machineBusySeconds() };
    let started = Date.now();
    const { job } = await uploadRoster(base, workloadToken, rosterFile);
    const uploadSeconds = (Date.now() - started) / 1000;
    console.log(`roster of ${job.totalRows} rows uploaded and stored in ${uploadSeconds.toFixed(1)} s`);
    let lastPrint = 0;
    // Polled every POLL_MS, not the CLI's 1 s: the end of a 13 s run was seen up to a second late, and the
    // figure moved in steps of about 8 %.
    const final = await followRosterJob(
      base,
      workloadToken,
      job.id,
      (status) => {
        if (Date.now() - lastPrint >= 5_000 || status.state !== 'running') {
          lastPrint = Date.now();
          console.log(`  ${progressLine(status, (Date.now() - started) / 1000)}`);
        }
      },
      POLL_MS,
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `reconcile: ${final.totalRows} rows against ${members} members in ${seconds.toFixed(1)} s = ${Math.round(final.totalRows / seconds)} rows/s end to end ` +
        `(upload ${uploadSeconds.toFixed(1)} s); ${final.state}; counts ${JSON.stringify(final.counts)}; worker peak RSS ${workersPeakRss()} MiB`,
    );

    const cpu = { worker: workersCpu() - cpuBefore.worker, api: cpuSeconds(api.pid!) - cpuBefore.api, machine: machineBusySeconds() - cpuBefore.machine };
    console.log(
      `CPU per row: worker${workerCount > 1 ? 's' : ''} ${((cpu.worker / final.totalRows) * 1000).toFixed(2)} ms, API ${((cpu.api / final.totalRows) * 1000).toFixed(2)} ms, ` +
        `everything else (Postgres, Redis) ${(((cpu.machine - cpu.worker - cpu.api) / final.totalRows) * 1000).toFixed(2)} ms; machine busy ${((cpu.machine / (seconds * os.cpus().length)) * 100).toFixed(0)} %`,
    );

    // 2. $bulk-member-match, as a partner.
    const keys = await generatePartnerKeyPair();
    const client = await registerPartnerClient(db, { name: 'bench', organization: partnerOrg, jwks: keys.publicJwks, scopes: ['system/Group.$bulk-member-match'] });
    const assertion = await signClientAssertion({ clientId: client.clientId, tokenUrl: `${base}/oauth/token`, privateJwk: keys.privateJwk });
    const partnerToken = (await requestAccessToken(`${base}/oauth/token`, assertion, 'system/Group.$bulk-member-match')).body.access_token as string;
    const consent = hrexExampleRequest({ recipient: partnerOrg, policy: 'sensitive' }).parameter!.find((p) => p.name === 'Consent')!;
    const bundles: ParametersParameter[] = [];
    for await (const query of readQueries(path.join(dir, 'queries.ndjson'))) {
      if (bundles.length >= bulkMembers) break;
      const parts = (query.parameters as { parameter: ParametersParameter[] }).parameter;
      bundles.push({ name: 'MemberBundle', part: [...parts, consent] });
    }
    const bulkBody = JSON.stringify({ resourceType: 'Parameters', parameter: bundles });
    started = Date.now();
    const kick = await fetch(`${base}/fhir/Group/$bulk-member-match`, {
      method: 'POST',
      headers: { authorization: `Bearer ${partnerToken}`, 'content-type': 'application/fhir+json', prefer: 'respond-async' },
      body: bulkBody,
    });
    const kickSeconds = (Date.now() - started) / 1000;
    if (kick.status !== 202) throw new Error(`bulk kick-off answered ${kick.status}: ${await kick.text()}`);
    const statusUrl = kick.headers.get('content-location')!.replace(/^https?:\/\/[^/]+/, base);
    let result: Response;
    let lastProgress = 0;
    for (;;) {
      result = await fetch(statusUrl, { headers: { authorization: `Bearer ${partnerToken}` } });
      if (result.status !== 202) break;
      if (Date.now() - lastProgress >= 2_000) {
        lastProgress = Date.now();
        console.log(`  bulk: ${result.headers.get('x-progress')}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const body = (await result.json()) as { parameter?: { name: string; resource: { member?: unknown[] } }[] };
    const bulkSeconds = (Date.now() - started) / 1000;
    const groups = Object.fromEntries((body.parameter ?? []).map((p) => [p.name, p.resource.member?.length ?? 0]));
    console.log(
      `$bulk-member-match: ${bundles.length} members in ${bulkSeconds.toFixed(1)} s = ${Math.round(bundles.length / bulkSeconds)} members/s ` +
        `(kick-off ${kickSeconds.toFixed(1)} s); status ${result.status}; groups ${JSON.stringify(groups)}; worker peak RSS ${workersPeakRss()} MiB`,
    );

    // The same bodies to a bare Express endpoint that reads them (counts the roster's lines, parses the JSON).
    const bareRoster = await bareUploadSeconds('/rosters', rosterFile, 'text/csv');
    console.log(ratioLine(`reconcile, ${workerCount} worker${workerCount > 1 ? 's' : ''}`, final.totalRows / seconds, final.totalRows / bareRoster, 'rows/s'));
    const bareBulk = await bareJsonSeconds('/fhir/Group/$bulk-member-match', bulkBody);
    console.log(ratioLine(`$bulk-member-match, ${workerCount} worker${workerCount > 1 ? 's' : ''}`, bundles.length / bulkSeconds, bundles.length / bareBulk, 'members/s'));
    printLoad('end');
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await db.destroy();
  }
}

await main();

/**
 * npm run bench:member-match [-- members] — autocannon against a real server (its own process) over a
 * synthetic index of 100,000 members. Prints throughput, p50/p99 latency and errors for a fixed 100 req/s
 * run (the target: p99 < 50 ms) and for an unthrottled run. Uses a throwaway database, dropped at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { parse } from 'csv-parse';
import pg from 'pg';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion } from '../src/cli/partner-tools.js';
import { openDatabase } from '../src/db/database.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { importRoster } from '../src/members/roster-import.js';
import { writeSyntheticRoster } from './synthetic-roster.js';

const members = Number(process.argv[2] ?? 100_000);
const server = 'postgres://postgres@127.0.0.1:5432';
const dbName = `mm_bench_mm_${randomBytes(4).toString('hex')}`;
const databaseUrl = `${server}/${dbName}`;
const port = 18000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
const partnerOrg = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };

interface Row { member_id: string; given: string; family: string; birth_date: string; gender: string; coverage_id: string }

async function sampleRows(file: string, every: number, max: number): Promise<Row[]> {
  const rows: Row[] = [];
  let i = 0;
  for await (const row of createReadStream(file).pipe(parse({ columns: true }))) {
    if (i++ % every === 0) rows.push(row as Row);
    if (rows.length >= max) break;
  }
  return rows;
}

function requestBody(row: Row): string {
  const request = hrexExampleRequest({ recipient: partnerOrg, policy: 'sensitive' }) as any;
  const patient = request.parameter[0].resource;
  patient.identifier = undefined;
  patient.name = [{ family: row.family, given: [row.given] }];
  patient.birthDate = row.birth_date;
  patient.gender = row.gender || 'unknown';
  request.parameter[1].resource.identifier = [{ value: row.coverage_id }];
  request.parameter[2].resource.identifier = [{ system: 'http://example.org/new-payer/identifiers/coverage', value: `NP-${row.member_id}` }];
  return JSON.stringify(request);
}

function report(label: string, result: autocannon.Result): void {
  console.log(
    `${label}: ${result.requests.total} requests in ${result.duration.toFixed(1)} s = ${result.requests.average.toFixed(1)} req/s; ` +
      `latency p50 ${result.latency.p50} ms, p90 ${result.latency.p90} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms; ` +
      `2xx ${result['2xx']}, non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}`,
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-'));
  const rosterFile = path.join(dir, 'roster.csv');
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  await writeSyntheticRoster(rosterFile, members, 42);
  const db = await openDatabase(databaseUrl, 4);
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const started = Date.now();
    const summary = await importRoster(db, rosterFile, { memberIdentifierSystem: 'http://example.org/old-payer/identifiers/member' });
    console.log(`index: ${summary.rows} rows imported in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const keys = await generatePartnerKeyPair();
    const client = await registerPartnerClient(db, { name: 'bench', organization: partnerOrg, jwks: keys.publicJwks, scopes: ['system/Patient.$member-match'] });

    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, PORT: String(port), DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', REDIS_KEY_PREFIX: `mm-bench-${port}:` },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let i = 0; ; i++) {
      if (i > 100) throw new Error('server did not start');
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const assertion = await signClientAssertion({ clientId: client.clientId, tokenUrl: `${base}/oauth/token`, privateJwk: keys.privateJwk });
    const token = (await requestAccessToken(`${base}/oauth/token`, assertion, 'system/Patient.$member-match')).body.access_token as string;

    const bodies = (await sampleRows(rosterFile, Math.max(1, Math.floor(members / 2000)), 2000)).map(requestBody);
    const requests = bodies.map((body) => ({ method: 'POST' as const, path: '/fhir/Patient/$member-match', body }));
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' };

    await autocannon({ url: base, connections: 4, duration: 3, headers, requests }); // warm-up
    report('fixed rate 100 req/s, 20 s', await autocannon({ url: base, connections: 10, overallRate: 100, duration: 20, headers, requests }));
    report('unthrottled, 10 connections, 15 s', await autocannon({ url: base, connections: 10, duration: 15, headers, requests }));
    const audit = await db.selectFrom('audit_events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    console.log(`audit events written: ${audit.n}`);
  } finally {
    child?.kill('SIGTERM');
    await db.destroy();
    const admin = new pg.Client({ connectionString: `${server}/postgres` });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();

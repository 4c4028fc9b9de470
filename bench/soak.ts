/**
 * npm run bench:soak [-- --members N] [--duration S] [--rate R] [--bulk-every S] [--bulk-size B]
 *
 * A steady mixed load against one real server process (API and queue workers together, as `npm start` runs
 * them), for `--duration` seconds (default 600):
 *  - single `$member-match` requests at `--rate` per second (default 20), open loop, identifier-less synthetic
 *    queries (members with hazards and non-members), so matches, reviews and misses all happen;
 *  - a `$bulk-member-match` of `--bulk-size` members (default 50) every `--bulk-every` seconds (default 15),
 *    followed to its result;
 *  - a reviewer who claims the next review case and decides it every 2 s (four-eyes cases confirmed by a
 *    second reviewer), over the review REST API.
 * Tokens are fetched again before they expire. Prints the machine and its load average before the start, the
 * server's resident memory every 60 s and at start and end, and the counts by status; an error is a 5xx, a
 * network error or a bulk job that failed. Exits non-zero when there was any error.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion } from '../src/cli/partner-tools.js';
import { loadConfig } from '../src/config.js';
import { devIdpToken } from '../src/identity/humans.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { readQueries, readTruth } from '../tools/evaluation/files.js';
import { openIndexDatabase } from '../tools/evaluation/scratch-database.js';
import { runSynth } from '../tools/synth/index.js';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '600' },
    rate: { type: 'string', default: '20' },
    'bulk-every': { type: 'string', default: '15' },
    'bulk-size': { type: 'string', default: '50' },
  },
});
const members = Number(values.members);
const duration = Number(values.duration);
const rate = Number(values.rate);
const bulkEvery = Number(values['bulk-every']);
const bulkSize = Number(values['bulk-size']);
const partnerOrg = { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' };
const port = 19000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
const SCOPES = 'system/Patient.$member-match system/Group.$bulk-member-match';

const counts: Record<string, number> = {};
let errors = 0;
const count = (kind: string, status: number | string) => {
  const key = `${kind} ${status}`;
  counts[key] = (counts[key] ?? 0) + 1;
  if (typeof status === 'string' || status >= 500) errors++;
};

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = path.resolve('bench', 'out', `synth-${members}-100000`);
  if (!existsSync(path.join(dir, 'truth.csv'))) await runSynth({ members, queries: 100_000, seed: 2027, out: dir });
  const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/member_match';
  const { db, url: databaseUrl } = await openIndexDatabase(serverUrl, path.join(dir, 'roster.csv'), 'http://example.org/old-payer/identifiers/member', console.log);
  const env = {
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    DEV_MODE: 'true',
    REDIS_KEY_PREFIX: `mm-soak-${port}:`,
    // One bench client is one tenant sending thousands of members: the guards run but do not trip.
    RATE_LIMIT_PER_MINUTE: '1000000',
    BRUTE_FORCE_UNMATCHED: '1000000',
    BRUTE_FORCE_CARD_VARIANTS: '1000000',
    BRUTE_FORCE_BIRTH_DATE_VARIANTS: '1000000',
    REVIEW_CASES_PER_HOUR: '1000000',
    BATCH_RETRY_AFTER_SECONDS: '1',
    METRICS_PORT: 'off',
  };
  const config = loadConfig(env);
  const keys = await generatePartnerKeyPair();
  const client = await registerPartnerClient(db, { name: 'soak', organization: partnerOrg, jwks: keys.publicJwks, scopes: SCOPES.split(' ') });

  const truth = await readTruth(path.join(dir, 'truth.csv'));
  const consent = hrexExampleRequest({ recipient: partnerOrg, policy: 'sensitive' }).parameter!.find((p) => p.name === 'Consent')!;
  const requests: { parameter: unknown[] }[] = [];
  for await (const query of readQueries(path.join(dir, 'queries.ndjson'))) {
    const row = truth.get(query.id);
    if (row?.memberId && !row.hazard.includes('no-card')) continue;
    const request = query.parameters as { parameter: unknown[] };
    request.parameter.push(consent);
    requests.push(request);
    if (requests.length >= 20_000) break;
  }

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (let i = 0; ; i++) {
      if (i > 150) throw new Error('server did not start');
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
      await sleep(200);
    }
    const partnerToken = async () =>
      (await requestAccessToken(`${base}/oauth/token`, await signClientAssertion({ clientId: client.clientId, tokenUrl: `${base}/oauth/token`, privateJwk: keys.privateJwk }), SCOPES)).body.access_token as string;
    let token = await partnerToken();
    let reviewers = [await devIdpToken(db, config, 'soak-ann', ['reviewer']), await devIdpToken(db, config, 'soak-bob', ['reviewer'])];
    const refresh = setInterval(() => {
      void partnerToken().then((t) => (token = t), () => errors++);
      void Promise.all([devIdpToken(db, config, 'soak-ann', ['reviewer']), devIdpToken(db, config, 'soak-bob', ['reviewer'])]).then((t) => (reviewers = t), () => errors++);
    }, 240_000);

    const rssStart = rssMiB(child.pid!);
    console.log(`start: server RSS ${rssStart.toFixed(0)} MiB; ${duration} s of ${rate} single matches/s, a ${bulkSize}-member bulk match every ${bulkEvery} s, a review decision every 2 s`);
    const started = performance.now();
    const until = started + duration * 1000;
    let next = 0;
    const inFlight = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    };

    const singles = (async () => {
      for (let i = 0; performance.now() < until; i++) {
        const wait = started + (i * 1000) / rate - performance.now();
        if (wait > 0) await sleep(wait);
        const body = JSON.stringify(requests[next++ % requests.length]);
        track(
          fetch(`${base}/fhir/Patient/$member-match`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body })
            .then(async (r) => {
              await r.arrayBuffer();
              count('member-match', r.status);
            })
            .catch(() => count('member-match', 'network-error')),
        );
      }
    })();

    const bulks = (async () => {
      while (performance.now() < until) {
        const members = Array.from({ length: bulkSize }, () => ({ name: 'MemberBundle', part: requests[next++ % requests.length]!.parameter }));
        const kick = await fetch(`${base}/fhir/Group/$bulk-member-match`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', prefer: 'respond-async' },
          body: JSON.stringify({ resourceType: 'Parameters', parameter: members }),
        }).catch(() => undefined);
        count('bulk kick-off', kick?.status ?? 'network-error');
        const location = kick?.headers.get('content-location');
        await kick?.arrayBuffer();
        for (let polls = 0; location && polls < 300; polls++) {
          await sleep(1000);
          const poll = await fetch(location.replace(config.fhirBaseUrl, `${base}/fhir`), { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
          await poll?.arrayBuffer();
          if (poll?.status === 202) continue;
          count('bulk result', poll?.status ?? 'network-error');
          break;
        }
        await sleep(bulkEvery * 1000);
      }
    })();

    const reviews = (async () => {
      const call = async (method: string, pathname: string, bearer: string, body?: unknown, etag?: string) => {
        const r = await fetch(`${base}/review${pathname}`, {
          method,
          headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/json' } : {}), ...(etag ? { 'if-match': etag } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        const text = await r.text();
        return { status: r.status, etag: r.headers.get('etag') ?? undefined, body: text ? (JSON.parse(text) as any) : undefined };
      };
      while (performance.now() < until) {
        await sleep(2000);
        const claimed = await call('POST', '/cases/claim', reviewers[0]!).catch(() => undefined);
        count('review claim', claimed?.status ?? 'network-error');
        if (claimed?.status !== 200) continue;
        const candidate = claimed.body.candidates?.[0]?.memberRef as string | undefined;
        const decision = candidate ? { decision: 'match', memberRef: candidate, reason: 'soak' } : { decision: 'no-match', reason: 'soak' };
        const decided = await call('POST', `/cases/${claimed.body.id}/decision`, reviewers[0]!, decision, claimed.etag).catch(() => undefined);
        count('review decide', decided?.status ?? 'network-error');
        if (decided?.body?.status === 'awaiting-confirmation') {
          const confirmed = await call('POST', `/cases/${claimed.body.id}/confirm`, reviewers[1]!, { agree: true, reason: 'soak' }, decided.etag).catch(() => undefined);
          count('review confirm', confirmed?.status ?? 'network-error');
        }
      }
    })();

    const memory = setInterval(() => console.log(`t=${((performance.now() - started) / 1000).toFixed(0)} s: server RSS ${rssMiB(child.pid!).toFixed(0)} MiB; errors ${errors}`), 60_000);
    await Promise.all([singles, bulks, reviews]);
    await Promise.all([...inFlight]);
    clearInterval(memory);
    clearInterval(refresh);
    const rssEnd = rssMiB(child.pid!);
    console.log(`end after ${((performance.now() - started) / 1000).toFixed(0)} s: server RSS ${rssEnd.toFixed(0)} MiB (start ${rssStart.toFixed(0)} MiB); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`by kind and status: ${JSON.stringify(counts)}`);
    console.log(`errors (5xx, network, failed bulk): ${errors}`);
  } finally {
    child.kill('SIGTERM');
    await db.destroy();
  }
  if (errors > 0) process.exitCode = 1;
}

await main();

/**
 * npm run bench:review [-- cases] — the review queue's own costs, against a throwaway database: how many
 * cases per second are created (case + outbox row + audit event, one transaction each, 8 in flight, as
 * concurrent requests would), and how long a claim takes (`FOR UPDATE SKIP LOCKED` with a lease), p50/p99,
 * with 4 reviewers claiming at once until the queue is empty.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { appendAuditEvent } from '../src/audit/audit-trail.js';
import { dropDatabase, openDatabase } from '../src/db/database.js';
import { registerPartnerClient } from '../src/identity/partner-clients.js';
import { claimNextCase, openCase } from '../src/review/review-cases.js';

const cases = Number(process.argv[2] ?? 5_000);
const server = process.env.BENCH_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
const dbName = `mm_bench_review_${randomBytes(4).toString('hex')}`;

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const db = await openDatabase(`${server}/${dbName}`, 10);
  try {
    const partner = await registerPartnerClient(db, { name: 'bench', organization: { system: 'urn:bench', value: 'p' }, jwks: { keys: [] }, scopes: [] });
    const candidates = [{ memberUuid: '00000000-0000-0000-0000-000000000000', memberId: 'x', probability: 0.9, matchWeight: 3.2, cardHit: false, explanation: [] }];
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < cases) {
          const n = next++;
          await db.transaction().execute(async (trx) => {
            const opened = await openCase(trx, {
              reason: 'uncertain',
              partnerClientId: partner.clientId,
              partnerOrganization: partner.organization,
              requestKey: `bench-${n}`,
              offered: { given: 'Pat', family: 'Person', birthDate: '1974-12-26' },
              linkRequest: {},
              candidates,
              modelVersion: 'bench',
              bestProbability: 0.9,
              slaDueAt: new Date(Date.now() + 86_400_000),
              highRisk: false,
            });
            await appendAuditEvent(trx, { operation: 'member-match', outcome: 'failure', httpStatus: 422, reasonCode: 'manual-review-required', details: { reviewCase: opened.id } });
          });
        }
      }),
    );
    const createSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(`created ${cases} cases (case + outbox + audit event per transaction, 8 in flight) in ${createSeconds.toFixed(2)} s = ${(cases / createSeconds).toFixed(0)} cases/s`);

    const latencies: number[] = [];
    const claimed = new Set<string>();
    await Promise.all(
      Array.from({ length: 4 }, async (_, r) => {
        for (;;) {
          const t = performance.now();
          const c = await claimNextCase(db, `reviewer-${r}`, 300);
          latencies.push(performance.now() - t);
          if (!c) return;
          if (claimed.has(c.id)) throw new Error('a case was claimed twice');
          claimed.add(c.id);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    console.log(`claimed ${claimed.size} cases with 4 concurrent reviewers, none twice; claim latency p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`);
  } finally {
    await db.destroy();
    await dropDatabase(`${server}/${dbName}`);
  }
}

await main();

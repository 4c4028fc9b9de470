import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startMetricsServer, type MetricsServer } from '../src/http/metrics-server.js';
import {
  HL7_EXAMPLE_MEMBER_ROW,
  importRows,
  NEW_PAYER_ORG,
  partnerToken,
  postMemberMatch,
  registerTestPartner,
  startTestService,
  type TestService,
} from './support/service.js';

/**
 * /metrics lives on a listener of its own (METRICS_PORT, bound to HOST), never on the API's port: behind a
 * reverse proxy on the same machine every API request comes from loopback, so the old socket-address check
 * let anyone read it. (src/main.ts starting and stopping it is covered by test/shutdown.test.ts.)
 */
let ts: TestService;
let metricsServer: MetricsServer;

beforeAll(async () => {
  ts = await startTestService();
  metricsServer = await startMetricsServer(0, '127.0.0.1');
  await importRows(ts, [HL7_EXAMPLE_MEMBER_ROW]);
});
afterAll(async () => {
  await metricsServer?.close();
  await ts?.stop();
});

describe('metrics', () => {
  it('are not served by the API, not even to loopback clients', async () => {
    const response = await fetch(`${ts.url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('member_match_decisions_total');
  });

  it('are served on their own port, counting the API’s decisions', async () => {
    const token = await partnerToken(ts, await registerTestPartner(ts));
    expect((await postMemberMatch(ts, token, hrexExampleRequest({ recipient: NEW_PAYER_ORG, policy: 'sensitive' }))).status).toBe(200);
    const response = await fetch(`${metricsServer.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.text()).toMatch(/member_match_decisions_total\{door="member-match",outcome="matched"\} [1-9]/);
    expect(metricsServer.server.address()).toMatchObject({ address: '127.0.0.1' });
  });

  it('answer nothing else on that port', async () => {
    expect((await fetch(`${metricsServer.url}/`)).status).toBe(404);
    expect((await fetch(`${metricsServer.url}/fhir/metadata`)).status).toBe(404);
    expect((await fetch(`${metricsServer.url}/metrics/x`)).status).toBe(404);
    const post = await fetch(`${metricsServer.url}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${metricsServer.url}/metrics?x=1`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('are configured by METRICS_PORT: 9464 by default, `off` for none', () => {
    expect(loadConfig({}).metricsPort).toBe(9464);
    expect(loadConfig({ METRICS_PORT: '9100' }).metricsPort).toBe(9100);
    expect(loadConfig({ METRICS_PORT: '0' }).metricsPort).toBe(0);
    expect(loadConfig({ METRICS_PORT: 'off' }).metricsPort).toBeUndefined();
    expect(() => loadConfig({ METRICS_PORT: 'yes' })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(ConfigError);
  });
});

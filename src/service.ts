import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { projectFile } from './project-files.js';
import type { Config } from './config.js';
import { openRuntimeDatabase } from './db/database.js';
import { configureAuditTrail } from './audit/settings.js';
import { startAuditCheckpointer } from './audit/checkpoints.js';
import { startAuditSealer } from './audit/sealer.js';
import { loadPhiHashKey } from './identity/secrets.js';
import { loadOrCreateSigningKey } from './identity/signing-keys.js';
import { createAccessTokenVerifier } from './identity/access-tokens.js';
import { createHumanVerifier } from './identity/humans.js';
import { createApp } from './http/app.js';
import { createAuthFailureGuard } from './http/auth-failures.js';
import type { AppDeps } from './http/deps.js';
import type { Logger } from './logger.js';
import { createRedis } from './redis.js';
import { createModelProvider } from './members/model-store.js';
import { loadPolicyEngine } from './policy/cedar-policy.js';
import { createReviewQueue } from './review/outbox-relay.js';
import { createBatchFlowProducer, createBatchQueue } from './batch/queue.js';
import { trackOperationalState } from './operational-gauges.js';

const version = (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;

export interface RunningService {
  server: Server;
  /** The HTTPS listener for mutual TLS, when TLS_PORT is set. */
  tlsServer: Server | undefined;
  tlsUrl: string | undefined;
  deps: AppDeps;
  /** The address actually bound (PORT=0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/**
 * Opens the database (creating and migrating it as the owner, then connecting as the runtime role: docs/audit.md),
 * connects Redis, loads keys and builds the app.
 */
export async function buildDeps(config: Config, logger: Logger): Promise<AppDeps> {
  configureAuditTrail(config.audit);
  const db = await openRuntimeDatabase(config);
  const redis = createRedis(config.redisUrl, config.redisKeyPrefix);
  redis.on('error', (error: Error) => logger.warn({ errName: error.name }, 'redis connection problem'));
  const signingKey = await loadOrCreateSigningKey(db);
  const phiHashKey = await loadPhiHashKey(db, config.phiHashKey);
  const matchModel = await createModelProvider(db);
  const reviewQueue = createReviewQueue(config.redisUrl, config.redisKeyPrefix);
  reviewQueue.on('error', (error: Error) => logger.warn({ errName: error.name }, 'review queue connection problem'));
  const batchFlow = createBatchFlowProducer(config.redisUrl, config.redisKeyPrefix);
  batchFlow.on('error', (error: Error) => logger.warn({ errName: error.name }, 'batch flow connection problem'));
  const batchQueue = createBatchQueue(config.redisUrl, config.redisKeyPrefix);
  batchQueue.on('error', (error: Error) => logger.warn({ errName: error.name }, 'batch queue connection problem'));
  return {
    config,
    db,
    authFailures: createAuthFailureGuard(db, logger, config.authFailures),
    batchFlow,
    batchQueue,
    redis,
    logger,
    signingKey,
    phiHashKey,
    matchModel,
    policy: loadPolicyEngine(),
    reviewQueue,
    version,
    verifyAccessToken: createAccessTokenVerifier({ db, config, signingKey }),
    verifyHumanToken: await createHumanVerifier(db, config),
  };
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const deps = await buildDeps(config, logger);
  // Chains committed audit events (one process at a time), and signs checkpoints of the chain's head outside
  // the database (one process at a time takes one).
  const sealer = startAuditSealer(deps.db, logger);
  const checkpointer = startAuditCheckpointer(deps.db, logger);
  // Queue depth, open review cases and lockouts, read when /metrics is scraped (docs/operations.md).
  const untrack = trackOperationalState(deps.db, [deps.reviewQueue, deps.batchQueue].filter((queue) => queue !== undefined));
  const app = createApp(deps);
  const server = createServer(app);
  server.keepAliveTimeout = 5_000;
  const port = await listen(server, config.port, config.host);
  // Mutual TLS: client certificates are requested and verified against our client CA, but a connection
  // without one is not dropped — it is answered (401) by the routes, which see `socket.authorized`.
  let tlsServer: Server | undefined;
  let tlsPort: number | undefined;
  if (config.tls) {
    tlsServer = createHttpsServer(
      {
        cert: readFileSync(config.tls.certFile),
        key: readFileSync(config.tls.keyFile),
        ca: readFileSync(config.tls.clientCaFile),
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      app,
    );
    tlsServer.keepAliveTimeout = 5_000;
    tlsPort = await listen(tlsServer, config.tls.port, config.host);
  }
  return {
    server,
    tlsServer,
    tlsUrl: tlsPort === undefined ? undefined : `https://${config.host}:${tlsPort}`,
    deps,
    url: `http://${config.host}:${port}`,
    async close() {
      // Stop accepting, let in-flight requests finish, then release connections.
      if (tlsServer) {
        const closing = tlsServer;
        await new Promise<void>((resolve) => closing.close(() => resolve()));
        closing.closeAllConnections();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await deps.authFailures?.stop();
      await sealer.stop();
      await checkpointer.stop();
      untrack();
      await deps.reviewQueue?.close().catch(() => undefined);
      await deps.batchQueue?.close().catch(() => undefined);
      await deps.batchFlow?.close().catch(() => undefined);
      await deps.db.destroy();
      deps.redis.disconnect();
    },
  };
}

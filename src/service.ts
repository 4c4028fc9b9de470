import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { projectFile } from './project-files.js';
import type { Config } from './config.js';
import { openDatabase } from './db/database.js';
import { loadPhiHashKey } from './identity/secrets.js';
import { loadOrCreateSigningKey } from './identity/signing-keys.js';
import { createAccessTokenVerifier } from './identity/tokens.js';
import { createHumanVerifier } from './identity/humans.js';
import { createApp } from './http/app.js';
import type { AppDeps } from './http/deps.js';
import type { Logger } from './logger.js';
import { createRedis } from './redis.js';
import { createModelProvider } from './matching/model-repository.js';
import { loadPolicyEngine } from './policy/cedar-policy.js';

const version = (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;

export interface RunningService {
  server: Server;
  deps: AppDeps;
  /** The address actually bound (PORT=0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/** Opens (creating and migrating) the database, connects Redis, loads keys and builds the app. */
export async function buildDeps(config: Config, logger: Logger): Promise<AppDeps> {
  const db = await openDatabase(config.databaseUrl);
  const redis = createRedis(config.redisUrl, config.redisKeyPrefix);
  redis.on('error', (error: Error) => logger.warn({ errName: error.name }, 'redis connection problem'));
  const signingKey = await loadOrCreateSigningKey(db);
  const phiHashKey = await loadPhiHashKey(db, config.phiHashKey);
  const matchModel = await createModelProvider(db);
  return {
    config,
    db,
    redis,
    logger,
    signingKey,
    phiHashKey,
    matchModel,
    policy: loadPolicyEngine(),
    version,
    verifyAccessToken: createAccessTokenVerifier({ db, config, signingKey }),
    verifyHumanToken: await createHumanVerifier(db, config),
  };
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const deps = await buildDeps(config, logger);
  const server = createServer(createApp(deps));
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    server,
    deps,
    url: `http://${config.host}:${port}`,
    async close() {
      // Stop accepting, let in-flight requests finish, then release connections.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await deps.db.destroy();
      deps.redis.disconnect();
    },
  };
}

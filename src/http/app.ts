import express, { type Express, type RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import { sql } from 'kysely';
import type { AppDeps } from './deps.js';
import { errorHandler } from './errors.js';
import { rejectHostileUrl } from './body.js';
import { noteRefusalOf, requestContext, requestLogFields } from './request-context.js';
import { adminRouter } from './routes/admin.js';
import { DASHBOARD_PATH, dashboardRouter } from './routes/dashboard.js';
import { fhirRouter } from './routes/fhir.js';
import { reviewRouter } from './routes/review.js';
import { workbenchRoutes } from './routes/workbench.js';
import { rosterRouter } from './routes/rosters.js';
import { oauthRouter, smartConfiguration } from './routes/oauth.js';

/**
 * The routers that answer with PHI or credentials (Patient read and search, $member-match and bulk results,
 * roster results, review cases, tokens, the queue dashboard): every response of theirs, errors included, is
 * `Cache-Control: no-store`, so no browser, proxy or CDN keeps a copy. /metrics is not served here but on its
 * own port (METRICS_PORT, src/http/metrics-server.ts).
 */
const API_PREFIXES = ['/fhir', '/oauth', '/review', '/rosters', '/admin'];

/** On every response: no MIME sniffing (a JSON answer is never run as a script or a page). */
const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  next();
};

const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.set('query parser', 'simple');

  app.use(securityHeaders);
  app.use(API_PREFIXES, noStore);
  app.use(requestContext());
  app.use(rejectHostileUrl);
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req) => req.headers['x-request-id'] as string,
      // Paths only: a query string may carry an identifier, and bodies are never logged.
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : 'info'),
      // Who called (client id, never a member) and why a refusal was refused (its reason code).
      customProps: (req, res) => requestLogFields(req as express.Request, res as express.Response),
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const [database, redis] = await Promise.all([
      sql`SELECT 1`.execute(deps.db).then(() => true, () => false),
      deps.redis.ping().then(() => true, () => false),
    ]);
    res.status(database && redis ? 200 : 503).json({ status: database && redis ? 'ready' : 'unavailable', database, redis });
  });

  app.get('/.well-known/smart-configuration', (_req, res) => {
    res.json(smartConfiguration(deps));
  });

  app.use('/oauth', oauthRouter(deps));
  app.use('/fhir', fhirRouter(deps));
  const queues = [deps.reviewQueue, deps.batchQueue].filter((queue) => queue !== undefined);
  if (queues.length > 0) app.use(DASHBOARD_PATH, dashboardRouter(deps, queues));
  app.use('/admin', adminRouter(deps));
  app.use(workbenchRoutes(deps)); // before /review: the page and its assets, then the review API
  app.use('/review', reviewRouter(deps));
  app.use('/rosters', rosterRouter(deps));
  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found' });
  });
  app.use(noteRefusalOf);
  app.use(errorHandler(deps));
  return app;
}

import { Router, type Request, type Response } from 'express';
import { ServiceUnavailableError } from '../../errors.js';
import { devIssuer } from '../../identity/humans.js';
import type { WorkbenchAssets, WorkbenchFile } from '../../review/workbench/build.js';
import type { AppDeps } from '../deps.js';
import { auditAs, requestAudit } from '../request-context.js';
import { DEV_IDP_PATH, devIdpRouter, workbenchRedirectUri } from './dev-idp.js';

/**
 * The reviewer workbench at /review/ (docs/workbench.md): a static page, its script and stylesheet, and the
 * settings it signs in with. The page holds no data of its own: it calls the review API (/review/cases…) with
 * the staff member's ID token, so nothing here is authenticated or audited — but nothing here is PHI either.
 *
 * Assets come from dist/workbench (`npm run build:ui`, part of `npm run build`); when those are missing or
 * older than the sources and esbuild is installed (development, tests), they are bundled in memory once, at
 * the first request, instead.
 */
const TYPES: Record<WorkbenchFile, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

async function loadAssets(deps: AppDeps): Promise<WorkbenchAssets> {
  const { bundleWorkbench, readBuiltWorkbench } = await import('../../review/workbench/build.js');
  const built = await readBuiltWorkbench();
  if (built && !built.stale) return built.assets;
  try {
    const assets = await bundleWorkbench();
    deps.logger.info(built ? 'workbench bundled in memory (dist/workbench is older than its sources)' : 'workbench bundled in memory (no dist/workbench)');
    return assets;
  } catch (error) {
    if (built) {
      deps.logger.warn({ errName: (error as Error).name }, 'workbench sources are newer than dist/workbench but cannot be bundled here: serving the built files');
      return built.assets;
    }
    throw error;
  }
}

/** Where staff sign in: the development IdP with DEV_MODE=true, otherwise the organisation's OIDC_ISSUER. */
export function workbenchSettings(deps: AppDeps) {
  const { config } = deps;
  const issuer = config.devMode ? devIssuer(config) : config.oidc.issuer;
  return {
    issuer: issuer ?? null,
    clientId: config.oidc.audience,
    redirectUri: workbenchRedirectUri(deps),
    rolesClaim: config.oidc.rolesClaim,
    leaseSeconds: config.review.leaseSeconds,
  };
}

function contentSecurityPolicy(issuer: string | null): string {
  // The page talks to this origin and to the IdP (discovery and the token endpoint); nothing else, no inline code.
  const idp = issuer ? ` ${new URL(issuer).origin}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${idp}`,
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

/** The workbench at /review/ and, with DEV_MODE=true, the development IdP's sign-in at /dev-idp: one mount for the app. */
export function workbenchRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use('/review', workbenchRouter(deps));
  if (deps.config.devMode) router.use(DEV_IDP_PATH, devIdpRouter(deps));
  return router;
}

function workbenchRouter(deps: AppDeps): Router {
  const router = Router();
  const settings = workbenchSettings(deps);
  const csp = contentSecurityPolicy(settings.issuer);
  let assets: Promise<WorkbenchAssets> | undefined;

  async function send(req: Request, res: Response, file: WorkbenchFile) {
    requestAudit(res).written = true; // static files: nothing to audit (the API calls the page makes are)
    assets ??= loadAssets(deps).catch((error: unknown) => {
      assets = undefined; // try again on the next request
      throw new ServiceUnavailableError('workbench-not-built', 'the workbench is not built: run npm run build:ui', { cause: error });
    });
    const body = (await assets)[file];
    // The OIDC redirect lands here with the code in the query: no Referer may carry it anywhere.
    res.set('Referrer-Policy', 'no-referrer').set('Content-Security-Policy', csp).type(TYPES[file]);
    res.send(req.method === 'HEAD' ? undefined : body);
  }

  router.get('/', auditAs('workbench'), async (req, res) => {
    // Relative asset URLs need the trailing slash; the query (an OIDC callback's code and state) is kept.
    const [pathname, query] = req.originalUrl.split('?', 2);
    if (!pathname?.endsWith('/')) {
      res.redirect(301, `${pathname}/${query === undefined ? '' : `?${query}`}`);
      return;
    }
    await send(req, res, 'index.html');
  });
  router.get('/app.js', auditAs('workbench'), (req, res) => send(req, res, 'app.js'));
  router.get('/app.css', auditAs('workbench'), (req, res) => send(req, res, 'app.css'));
  router.get('/workbench-settings.json', auditAs('workbench'), (_req, res) => {
    requestAudit(res).written = true;
    res.json(settings);
  });
  return router;
}

import { Router } from 'express';
import { decodeJwt } from 'jose';
import { writeRequestAudit } from '../../audit/request-audit.js';
import { formBody } from '../body.js';
import { InvalidRequestError } from '../../errors.js';
import { publicJwks } from '../../identity/signing-keys.js';
import { CLIENT_ASSERTION_ALGS } from '../../identity/grants/client-credentials.js';
import { TOKEN_EXCHANGE_GRANT } from '../../identity/grants/token-exchange.js';
import { issueToken } from '../../identity/tokens.js';
import type { AppDeps } from '../deps.js';
import { clientCertificateThumbprint } from '../../identity/client-certificate.js';
import { PARTNER_SCOPES } from '../../identity/partner-clients.js';
import { WORKLOAD_SCOPES } from '../../identity/workloads.js';
import { auditAs, requestAudit } from '../request-context.js';

export function oauthRouter(deps: AppDeps): Router {
  const router = Router();

  router.post(
    '/token',
    auditAs('token'),
    (req, _res, next) => {
      if (!req.is('application/x-www-form-urlencoded')) {
        throw new InvalidRequestError('unsupported-media-type', 'send application/x-www-form-urlencoded', {
          oauthError: 'invalid_request',
        });
      }
      next();
    },
    ...formBody({ limit: '16kb', parameterLimit: 20 }),
    async (req, res) => {
      const form = (req.body ?? {}) as Record<string, unknown>;
      const audit = requestAudit(res);
      audit.details.claimedClientId = claimedClientId(form.client_assertion);
      try {
        deps.authFailures?.refuseIfThrottled(req.ip);
      } catch (error) {
        audit.written = true; // counted into the source's per-minute aggregate instead
        throw error;
      }
      const { response, actor } = await issueToken(deps, form, { certificateThumbprint: clientCertificateThumbprint(req) }).catch((error: unknown) => {
        const failedAuthentication = (error as { status?: unknown }).status === 401;
        if (failedAuthentication && deps.authFailures?.recordFailure(req.ip) === 'aggregate') audit.written = true;
        throw error;
      });
      audit.actor = actor;
      audit.details.scope = response.scope;
      await writeRequestAudit(deps.db, audit, { outcome: 'success', httpStatus: 200, reasonCode: 'token-issued' });
      res.status(200).set('Cache-Control', 'no-store').set('Pragma', 'no-cache').json(response);
    },
  );

  router.get('/jwks', auditAs('jwks'), async (_req, res) => {
    const jwks = await publicJwks(deps.db);
    await writeRequestAudit(deps.db, requestAudit(res), { outcome: 'success', httpStatus: 200, reasonCode: 'ok' });
    res.json(jwks);
  });

  router.use(auditAs('unknown'), () => {
    throw new InvalidRequestError('unknown-route', 'no such OAuth endpoint', { oauthError: 'invalid_request' });
  });
  return router;
}

/** The unverified `iss` of an assertion, for the audit of a failed attempt; a client id is not PHI. */
function claimedClientId(assertion: unknown): string | undefined {
  if (typeof assertion !== 'string') return undefined;
  try {
    const iss = decodeJwt(assertion).iss;
    return typeof iss === 'string' ? iss.slice(0, 128) : undefined;
  } catch {
    return undefined;
  }
}

export function smartConfiguration(deps: AppDeps) {
  return {
    issuer: deps.config.publicBaseUrl,
    jwks_uri: `${deps.config.publicBaseUrl}/oauth/jwks`,
    token_endpoint: deps.config.tokenUrl,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
    grant_types_supported: ['client_credentials', TOKEN_EXCHANGE_GRANT],
    // Partners and workloads share the bulk scope: listed once.
    scopes_supported: [...new Set([...PARTNER_SCOPES, ...WORKLOAD_SCOPES])],
    response_types_supported: ['token'],
    capabilities: ['client-confidential-asymmetric'],
  };
}

import { decodeJwt, jwtVerify } from 'jose';
import { InvalidRequestError } from '../../errors.js';
import { signAccessToken } from '../access-tokens.js';
import type { Actor } from '../actor.js';
import { findWorkloadBySubject, isIssuerTrusted } from '../workloads.js';
import { assertionErrorCode, CLOCK_TOLERANCE_SECONDS, keySetOf, stringField, type TokenDeps, type TokenResponse } from './common.js';

/** RFC 8693 token exchange: its identifiers, and the workload grant (a platform JWT for an access token). */

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Workload identity tokens must be signed with a public-key algorithm: an HMAC "signature" made with a
 * public key (algorithm confusion) is refused before any key is looked at. */
export const WORKLOAD_TOKEN_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'ES256', 'ES384', 'EdDSA'];

/**
 * POST /oauth/token with RFC 8693 token exchange: a workload presents the JWT its platform issued it
 * (`subject_token`, type `urn:ietf:params:oauth:token-type:jwt`); a registered issuer + subject maps it to a
 * workload registration and its scopes. The access token lives no longer than the subject token.
 */
export async function issueWorkloadToken(
  deps: TokenDeps,
  form: Record<string, unknown>,
): Promise<{ response: TokenResponse & { issued_token_type: string }; actor: Actor }> {
  if (stringField(form, 'subject_token_type') !== JWT_TOKEN_TYPE) {
    throw new InvalidRequestError('unsupported-token-type', `subject_token_type must be ${JWT_TOKEN_TYPE}`, { oauthError: 'invalid_request' });
  }
  const subjectToken = stringField(form, 'subject_token');
  if (!subjectToken) throw new InvalidRequestError('missing-subject-token', 'subject_token is required', { oauthError: 'invalid_request' });
  const invalidGrant = (code: string, message: string, cause?: unknown) =>
    new InvalidRequestError(code, message, { oauthError: 'invalid_grant', cause });

  let claimed: { iss?: unknown; sub?: unknown };
  try {
    claimed = decodeJwt(subjectToken);
  } catch (error) {
    throw invalidGrant('subject-token-malformed', 'subject_token is not a JWT', error);
  }
  if (typeof claimed.iss !== 'string' || typeof claimed.sub !== 'string') {
    throw invalidGrant('subject-token-claims', 'subject_token needs iss and sub');
  }
  const workload = await findWorkloadBySubject(deps.db, claimed.iss, claimed.sub);
  if (!workload) {
    const trusted = await isIssuerTrusted(deps.db, claimed.iss);
    throw invalidGrant(trusted ? 'workload-subject-unknown' : 'workload-issuer-untrusted', trusted ? 'subject is not a registered workload' : 'issuer is not trusted');
  }
  if (!workload.enabled) throw invalidGrant('workload-disabled', 'workload is disabled');

  let payload;
  try {
    ({ payload } = await jwtVerify(subjectToken, keySetOf(workload), {
      algorithms: WORKLOAD_TOKEN_ALGS,
      issuer: workload.issuer,
      subject: workload.subject,
      audience: workload.audience,
      requiredClaims: ['iss', 'sub', 'aud', 'exp'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw invalidGrant(assertionErrorCode(error).replace('assertion-', 'subject-token-'), 'subject_token failed verification', error);
  }

  const requested = (stringField(form, 'scope') ?? '').split(/\s+/).filter(Boolean);
  const scopes = requested.length > 0 ? requested : workload.scopes;
  const notGranted = scopes.filter((s) => !workload.scopes.includes(s));
  if (notGranted.length > 0) {
    throw new InvalidRequestError('scope-not-granted', `scope not granted to this workload: ${notGranted.join(' ')}`, { oauthError: 'invalid_scope' });
  }
  const scope = scopes.join(' ');
  const remaining = (payload.exp as number) - Math.floor(Date.now() / 1000);
  const { accessToken, jti, ttl } = await signAccessToken(deps, {
    subject: workload.subject,
    clientId: workload.workloadId,
    organization: deps.config.ownOrganization,
    actorClass: 'workload',
    protocol: 'token-exchange',
    scope,
    ttl: remaining,
  });
  return {
    response: { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'bearer', expires_in: ttl, scope },
    actor: {
      actorClass: 'workload',
      subject: workload.subject,
      clientId: workload.workloadId,
      organization: deps.config.ownOrganization,
      scopes,
      purposeOfUse: undefined,
      protocol: 'token-exchange',
      tokenJti: jti,
    },
  };
}

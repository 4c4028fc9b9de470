/**
 * The CLI's side of HTTP: every request the CLI sends goes through `cliFetch`, so a server that is down, gone
 * mid-job or misnamed is reported as what it is and what to check — never as `TypeError: fetch failed` — and
 * a refusal is reported with its status, reason code and message (OperationOutcome or OAuth JSON).
 */

/** A failure the operator can act on: main.ts prints its message alone, without a stack or error name. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** The service answered with an error status. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly body: unknown,
    hint = '',
  ) {
    super(`the service answered ${status}${describeRefusal(body)}${hint}`);
  }
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused: is the server running, on that host and port?',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved (DNS)',
  ECONNRESET: 'the connection was dropped: the server stopped or restarted mid-request',
  UND_ERR_SOCKET: 'the connection was closed: the server stopped or restarted mid-request',
  EPIPE: 'the connection was closed: the server stopped or restarted mid-request',
  ETIMEDOUT: 'the connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'the server accepted the connection but did not answer in time',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  CERT_HAS_EXPIRED: "the server's TLS certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's TLS certificate is self-signed and not trusted (NODE_EXTRA_CA_CERTS)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's TLS certificate is not trusted (NODE_EXTRA_CA_CERTS)",
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS to a port that speaks plain HTTP: use http:// (or the TLS port)',
};

/** What went wrong reaching `url`, in words an operator can act on. */
export function networkErrorMessage(url: string, error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  const code = cause?.code ?? (error as { code?: string } | null)?.code;
  let origin = url;
  try {
    origin = new URL(url).origin;
  } catch {
    // not a URL: report it as given
  }
  const reason = (code && NETWORK_REASONS[code]) ?? cause?.message ?? (error as Error | null)?.message ?? 'unknown network error';
  return `cannot reach the service at ${origin}: ${reason}${code && NETWORK_REASONS[code] ? ` (${code})` : ''}. Check --base or PUBLIC_BASE_URL.`;
}

export async function cliFetch(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    if ((error as Error | null)?.name === 'AbortError') throw error;
    throw new CliError(networkErrorMessage(url, error), { cause: error });
  }
}

/** A response body as JSON when it is JSON, else its text; undefined when empty. */
export async function responseBody(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new CliError(networkErrorMessage(response.url, error), { cause: error });
  }
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

/** `: 403 role-missing — the reason` from an OperationOutcome, OAuth error JSON or text. */
function describeRefusal(body: unknown): string {
  const outcome = body as { resourceType?: string; issue?: { diagnostics?: string; details?: { coding?: { code?: string }[] } }[] } | undefined;
  if (outcome?.resourceType === 'OperationOutcome') {
    const issue = outcome.issue?.[0];
    const code = issue?.details?.coding?.[0]?.code;
    return `${code ? ` ${code}` : ''}: ${issue?.diagnostics ?? 'no details'}`;
  }
  const oauth = body as { error?: string; error_description?: string } | undefined;
  if (typeof oauth?.error === 'string') return ` ${oauth.error}${oauth.error_description ? `: ${oauth.error_description}` : ''}`;
  if (typeof body === 'string' && body) return `: ${body.slice(0, 200)}`;
  return body === undefined ? '' : `: ${JSON.stringify(body).slice(0, 200)}`;
}

export interface ApiAnswer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON from the service, checked by the caller
  headers: Headers;
}

/**
 * A JSON API call with a bearer token; any status outside `accept` is an ApiError. A 401 says how to get a
 * fresh token (staff and access tokens are short-lived).
 */
export async function apiCall(
  base: string,
  token: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; accept?: number[]; tokenHint?: string } = {},
): Promise<ApiAnswer> {
  const response = await cliFetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const body = await responseBody(response);
  if (!(options.accept ?? [200]).includes(response.status)) {
    throw new ApiError(response.status, body, response.status === 401 && options.tokenHint ? ` (${options.tokenHint})` : '');
  }
  return { status: response.status, body, headers: response.headers };
}

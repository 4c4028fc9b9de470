import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/**
 * The RFC 8705 thumbprint (`x5t#S256`: base64url SHA-256 of the DER certificate) of the client certificate
 * presented on this request's TLS connection — only when the certificate verified against our client CA.
 * Undefined over plain HTTP or without a (valid) certificate.
 */
export function clientCertificateThumbprint(req: IncomingMessage): string | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (!socket.encrypted || !socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined;
  const certificate = socket.getPeerCertificate();
  if (!certificate?.raw) return undefined;
  return createHash('sha256').update(certificate.raw).digest('base64url');
}

import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that could carry PHI or secrets if someone ever logs a body or a header by mistake. Our own log
 * lines carry ids and codes only; this is the safety net.
 */
const redact = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.body',
  'res.body',
  'body',
  'client_assertion',
  'access_token',
  '*.name',
  '*.birthDate',
  '*.birth_date',
  '*.identifier',
  '*.given',
  '*.family',
];

/** JSON lines on stdout, or on `destination` (a test reading what the service logs). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: redact, censor: '[redacted]' }, base: { service: 'member-match' } };
  return destination ? pino(options, destination) : pino(options);
}

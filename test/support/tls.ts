import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A throwaway PKI for mutual-TLS tests, made with the machine's openssl: a CA, a server certificate for
 * 127.0.0.1, and client certificates signed by the CA (plus one signed by nobody we trust).
 */
export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  client(name: string): { cert: Buffer; key: Buffer };
  /** A self-signed client certificate our CA never issued. */
  stranger: { cert: Buffer; key: Buffer };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export function createTestPki(clients: string[]): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'mm-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=member-match test CA'], dir);
  const issue = (name: string, extensions: string) => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  issue('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  for (const name of clients) issue(name, 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-x509', ...ec, '-keyout', 'stranger.key', '-out', 'stranger.crt', '-days', '2', '-subj', '/CN=stranger'], dir);
  const read = (file: string) => readFileSync(path.join(dir, file));
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    client: (name) => ({ cert: read(`${name}.crt`), key: read(`${name}.key`) }),
    stranger: { cert: read('stranger.crt'), key: read('stranger.key') },
  };
}

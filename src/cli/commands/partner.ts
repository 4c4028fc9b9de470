import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import { loadConfig } from '../../config.js';
import { PARTNER_SCOPES } from '../../identity/partner-clients.js';
import { generatePartnerKeyPair, requestAccessToken, signClientAssertion } from '../partner-tools.js';
import { choiceOption } from './common.js';

export function registerPartnerCommands(program: Command): void {
  const partner = program.command('partner').description("play a partner payer's side, for demos and testing");
  partner
    .command('keys')
    .requiredOption('--out <dir>', 'folder to write private.jwk.json and jwks.json into')
    .addOption(choiceOption('--alg <alg>', 'signing algorithm', ['ES384', 'RS384'], 'ES384'))
    .description('generate a partner key pair')
    .action(async (options: { out: string; alg: 'ES384' | 'RS384' }) => {
      const pair = await generatePartnerKeyPair(options.alg);
      await mkdir(options.out, { recursive: true });
      await writeFile(path.join(options.out, 'private.jwk.json'), JSON.stringify(pair.privateJwk, null, 2), { mode: 0o600 });
      await writeFile(path.join(options.out, 'jwks.json'), JSON.stringify(pair.publicJwks, null, 2));
      console.log(`wrote ${path.join(options.out, 'private.jwk.json')} and ${path.join(options.out, 'jwks.json')}`);
    });
  partner
    .command('token')
    .requiredOption('--client-id <id>')
    .requiredOption('--key <file>', 'private JWK written by `partner keys`')
    .option('--scope <scopes>', 'scopes to request', PARTNER_SCOPES.join(' '))
    .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
    .description('sign a client assertion, exchange it at /oauth/token and print the access token')
    .action(async (options: { clientId: string; key: string; scope: string; base?: string }) => {
      const config = loadConfig();
      const tokenUrl = options.base ? `${options.base.replace(/\/+$/, '')}/oauth/token` : config.tokenUrl;
      const privateJwk = JSON.parse(await readFile(options.key, 'utf8')) as JWK;
      const assertion = await signClientAssertion({ clientId: options.clientId, tokenUrl, privateJwk });
      const result = await requestAccessToken(tokenUrl, assertion, options.scope);
      if (result.status !== 200) {
        console.error(JSON.stringify(result.body));
        process.exitCode = 1;
        return;
      }
      console.log(result.body.access_token);
    });
}

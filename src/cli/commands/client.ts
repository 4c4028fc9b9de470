import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { JWK } from 'jose';
import { disablePartnerClient, enablePartnerClient, listPartnerClients, PARTNER_SCOPES, registerPartnerClient } from '../../identity/partner-clients.js';
import { printTable } from '../output.js';
import { registerSwitch, withDb, systemValueOption } from './common.js';

export function registerClientCommands(program: Command): void {
  const client = program.command('client').description('partner payer clients (SMART Backend Services)');
  client
    .command('add')
    .requiredOption('--name <name>', 'display name of the partner')
    .requiredOption('--org <system|value>', "the partner's organisation identifier, e.g. http://hl7.org/fhir/sid/us-npi|0123456789", systemValueOption)
    .requiredOption('--jwks <file|url>', "the partner's public JWKS: a file, or an https URL we fetch keys from")
    .option('--scopes <scopes>', 'space-separated scopes to grant', PARTNER_SCOPES.join(' '))
    .option('--mtls', 'require mutual TLS: tokens are issued only over the TLS listener and bound to the client certificate (RFC 8705)')
    .description('register a partner; prints its client id')
    .action((options: { name: string; org: { system: string; value: string }; jwks: string; scopes: string; mtls?: boolean }) =>
      withDb(async (db) => {
        const scopes = options.scopes.split(/\s+/).filter(Boolean);
        const unknown = scopes.filter((s) => !(PARTNER_SCOPES as readonly string[]).includes(s));
        if (unknown.length > 0) throw new InvalidArgumentError(`unknown scopes: ${unknown.join(' ')}`);
        const isUrl = /^https?:\/\//.test(options.jwks);
        const jwks = isUrl ? undefined : (JSON.parse(await readFile(options.jwks, 'utf8')) as { keys: JWK[] });
        if (jwks && (!Array.isArray(jwks.keys) || jwks.keys.some((k) => !k.kid || k.d))) {
          throw new InvalidArgumentError('the JWKS must hold public keys, each with a kid');
        }
        const created = await registerPartnerClient(db, {
          name: options.name,
          organization: options.org,
          scopes,
          ...(jwks ? { jwks } : { jwksUrl: options.jwks }),
          tlsBound: !!options.mtls,
        });
        console.log(created.clientId);
      }),
    );
  client
    .command('list')
    .description('list partner clients')
    .action(() =>
      withDb(async (db) => {
        printTable(
          ['CLIENT ID', 'STATE', 'ORGANISATION', 'SCOPES', 'NAME'],
          (await listPartnerClients(db)).map((c) => [c.clientId, c.enabled ? 'enabled' : 'disabled', `${c.organization.system}|${c.organization.value}`, c.scopes.join(' '), c.name]),
        );
      }),
    );
  registerSwitch(client, 'client', 'disable', 'disable a client: new tokens are refused at once, issued tokens stop working within 5 seconds', disablePartnerClient);
  registerSwitch(client, 'client', 'enable', 'enable a disabled client again: it may request tokens at once', enablePartnerClient);
}

import { InvalidArgumentError, type Command } from 'commander';
import { devIdpToken, HUMAN_ROLES } from '../../identity/humans.js';
import { withDb } from './common.js';

export function registerDevIdpCommands(program: Command): void {
  program
    .command('dev-idp')
    .description('development identity provider for staff (refuses to run unless DEV_MODE=true)')
    .command('token')
    .requiredOption('--user <name>', 'the staff member (token subject)')
    .option('--role <role>', `a role: ${HUMAN_ROLES.join(', ')} (repeatable)`, (role: string, roles: string[]) => [...roles, role], [] as string[])
    .description('print an OpenID Connect ID token for a staff member, valid for an hour')
    .action((options: { user: string; role: string[] }) =>
      withDb(async (db, config) => {
        const unknown = options.role.filter((r) => !(HUMAN_ROLES as readonly string[]).includes(r));
        if (unknown.length > 0) throw new InvalidArgumentError(`unknown role(s): ${unknown.join(', ')}`);
        if (!config.devMode) throw new InvalidArgumentError('the development identity provider runs only with DEV_MODE=true');
        console.log(await devIdpToken(db, config, options.user, options.role));
      }),
    );
}

import type { Command } from 'commander';
import { withDb } from './common.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('create the database if needed and apply pending migrations')
    .action(() => withDb(async () => console.log('database is up to date')));
}

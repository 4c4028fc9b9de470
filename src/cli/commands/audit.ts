import type { Command } from 'commander';
import { verifyAuditChain } from '../../audit/audit-trail.js';
import { withDb } from './common.js';

export function registerAuditCommands(program: Command): void {
  program
    .command('audit')
    .description('the audit trail')
    .command('verify')
    .description('walk the hash chain; exit 1 and name the first broken row if it was tampered with')
    .action(() =>
      withDb(async (db) => {
        const result = await verifyAuditChain(db);
        if (result.ok) {
          console.log(`audit chain intact: ${result.events} events`);
        } else {
          console.error(`audit chain broken at seq ${result.firstBrokenSeq} (${result.problem}) after ${result.events - 1} good events`);
          process.exitCode = 1;
        }
      }),
    );
}

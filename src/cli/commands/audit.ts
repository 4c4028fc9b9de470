import type { Command } from 'commander';
import { verifyAuditChain } from '../../audit/audit-trail.js';
import { configureAuditTrail } from '../../audit/settings.js';
import { withDb } from './common.js';

export function registerAuditCommands(program: Command): void {
  program
    .command('audit')
    .description('the audit trail')
    .command('verify')
    .description(
      'walk the keyed hash chain and hold it to the latest signed checkpoint; exit 1 and name the first bad row if it was tampered with',
    )
    .option(
      '--checkpoints <file...>',
      'checkpoint files or log files (JSON lines) holding checkpoints; default AUDIT_CHECKPOINT_FILE',
    )
    .action((options: { checkpoints?: string[] }) =>
      withDb(async (db, config) => {
        const settings = configureAuditTrail(config.audit);
        const result = await verifyAuditChain(db, { settings, checkpointFiles: options.checkpoints ?? [settings.checkpointFile] });
        if (result.ok) {
          const anchor = result.checkpoint
            ? `, checked against the checkpoint of seq ${result.checkpoint.seq} (${result.checkpoint.at})`
            : '; no checkpoint found, so rows cut off the end would go unnoticed';
          console.log(`audit chain intact: ${result.events} events${anchor}`);
          for (const warning of result.warnings ?? []) console.error(`warning: ${warning}`);
        } else {
          console.error(`audit chain broken at seq ${result.firstBrokenSeq} (${result.problem}): ${result.message}`);
          process.exitCode = 1;
        }
      }),
    );
}

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError } from '../config.js';
import { projectFile } from '../project-files.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerRosterCommands } from './commands/roster.js';
import { registerClientCommands } from './commands/client.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerPartnerCommands } from './commands/partner.js';
import { registerWorkloadCommands } from './commands/workload.js';
import { registerAgentCommands } from './commands/agent.js';
import { registerDevIdpCommands } from './commands/dev-idp.js';
import { registerDemoCommands } from './commands/demo.js';
import { registerSynthCommand } from './commands/synth.js';
import { registerFebrlCommand } from './commands/febrl.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerConsentCommands } from './commands/consent.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerModelCommands } from './commands/model.js';
import { registerReviewCommands } from './commands/review.js';
import { registerLinksCommands } from './commands/links.js';
import { registerScratchCommands } from './commands/scratch.js';

/** `member-match <command>`: operator and demo commands. Every command reads the same configuration as the server. */

const { version } = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };
const program = new Command('member-match')
  .description('HRex $member-match service: operator commands')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError('(add --help for usage)');

registerMigrateCommand(program);
registerRosterCommands(program);
registerClientCommands(program);
registerAuditCommands(program);
registerPartnerCommands(program);
registerWorkloadCommands(program);
registerAgentCommands(program);
registerDevIdpCommands(program);
registerDemoCommands(program);
registerSynthCommand(program);
registerFebrlCommand(program);
registerEvalCommand(program);
registerConsentCommands(program);
registerPolicyCommands(program);
registerModelCommands(program);
registerReviewCommands(program);
registerLinksCommands(program);
registerScratchCommands(program);

// Errors meant for the operator (a bad argument, configuration, an unreachable or refusing service) print their
// message alone; anything else keeps its name, as a bug report would need.
const OPERATOR_ERRORS = new Set(['InvalidArgumentError', 'ConfigError', 'CliError']);
/** A file the operator named that cannot be read: which, and why, without Node's syscall jargon. */
const FILE_ERRORS: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'a directory, not a file' };

program.parseAsync(process.argv).catch((error: unknown) => {
  const e = error as { message?: string; name?: string; code?: string; path?: string };
  const forOperator = error instanceof ConfigError || OPERATOR_ERRORS.has(e?.name ?? '');
  const fileProblem = e?.code && e.path ? FILE_ERRORS[e.code] : undefined;
  console.error(`member-match: ${fileProblem ? `${e.path}: ${fileProblem}` : forOperator ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? ''}`}`);
  process.exitCode = 1;
});

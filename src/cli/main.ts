import { Command } from 'commander';
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

/** `member-match <command>`: operator and demo commands. Every command reads the same configuration as the server. */

const program = new Command('member-match').description('HRex $member-match service: operator commands');

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

program.parseAsync(process.argv).catch((error: unknown) => {
  const e = error as { message?: string; name?: string };
  console.error(`member-match: ${e?.name === 'InvalidArgumentError' || e?.name === 'ConfigError' ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? ''}`}`);
  process.exitCode = 1;
});

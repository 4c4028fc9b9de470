import type { Command } from 'commander';
import { hrexExampleRequest } from '../hrex-example.js';
import { systemValueOption } from './common.js';

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('demo material')
    .command('request')
    .option('--recipient <system|value>', 'consent recipient (the partner organisation)', systemValueOption)
    .option('--policy <policy>', 'consent policy: sensitive or regular', 'sensitive')
    .option('--birth-date <date>', "replace the member's birth date (e.g. a typo that needs a human reviewer)")
    .description('print the HL7 HRex example $member-match request with its consent period moved to today')
    .action((options: { recipient?: { system: string; value: string }; policy: 'regular' | 'sensitive'; birthDate?: string }) => {
      const request = hrexExampleRequest({ policy: options.policy, ...(options.recipient ? { recipient: options.recipient } : {}) });
      if (options.birthDate) (request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as { birthDate?: string }).birthDate = options.birthDate;
      console.log(JSON.stringify(request, null, 2));
    });
}

import { InvalidArgumentError, type Command } from 'commander';
import { hrexExampleRequest } from '../hrex-example.js';
import { choiceOption, systemValueOption } from './common.js';

const isoDate = (text: string) => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || Number.isNaN(Date.parse(text))) throw new InvalidArgumentError('expected a date as YYYY-MM-DD');
  return text;
};

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('demo material')
    .command('request')
    .option('--recipient <system|value>', 'consent recipient (the partner organisation)', systemValueOption)
    .addOption(choiceOption('--policy <policy>', 'consent policy', ['sensitive', 'regular'], 'sensitive'))
    .option('--birth-date <date>', "replace the member's birth date, YYYY-MM-DD (e.g. a typo that needs a human reviewer)", isoDate)
    .option('--without-member-number', "leave the member's own member number out of MemberPatient, as a partner who copied only the subscriber card would")
    .description('print the HL7 HRex example $member-match request with its consent period moved to today')
    .action((options: { recipient?: { system: string; value: string }; policy: 'regular' | 'sensitive'; birthDate?: string; withoutMemberNumber?: boolean }) => {
      const request = hrexExampleRequest({ policy: options.policy, ...(options.recipient ? { recipient: options.recipient } : {}) });
      const patient = request.parameter!.find((p) => p.name === 'MemberPatient')!.resource as { birthDate?: string; identifier?: unknown };
      if (options.birthDate) patient.birthDate = options.birthDate;
      if (options.withoutMemberNumber) delete patient.identifier;
      console.log(JSON.stringify(request, null, 2));
    });
}

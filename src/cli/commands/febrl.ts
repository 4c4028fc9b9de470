import type { Command } from 'commander';
import { febrlToEvaluationFiles } from '../../../tools/evaluation/febrl.js';

export function registerFebrlCommand(program: Command): void {
  program
    .command('febrl')
    .description('convert a FEBRL file (originals → index roster, duplicates → queries, truth) for `eval`')
    .argument('<file>', 'FEBRL CSV, e.g. fixtures/febrl3.csv')
    .requiredOption('--out <dir>', 'output folder')
    .option('--without-identifier', "keep soc_sec_id out of the requests (demographics alone)")
    .option('--hold-out <fraction>', 'leave this share of originals out of the roster: their duplicates become non-member queries', '0')
    .action(async (file: string, options: { out: string; withoutIdentifier?: boolean; holdOut: string }) => {
      const holdOut = Number(options.holdOut);
      if (!(holdOut >= 0 && holdOut < 1)) program.error('--hold-out must be a fraction in [0, 1)');
      console.log(JSON.stringify(await febrlToEvaluationFiles(file, options.out, { identifier: !options.withoutIdentifier, holdOut })));
    });
}

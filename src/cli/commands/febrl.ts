import type { Command } from 'commander';
import { febrlToEvaluationFiles } from '../../../tools/evaluation/febrl.js';

export function registerFebrlCommand(program: Command): void {
  program
    .command('febrl')
    .description('convert a FEBRL file (originals → index roster, duplicates → queries, truth) for `eval`')
    .argument('<file>', 'FEBRL CSV, e.g. fixtures/febrl3.csv')
    .requiredOption('--out <dir>', 'output folder')
    .action(async (file: string, options: { out: string }) => {
      console.log(JSON.stringify(await febrlToEvaluationFiles(file, options.out)));
    });
}

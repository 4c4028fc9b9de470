import type { Command } from 'commander';
import { runSynth } from '../../../tools/synth/index.js';
import { positiveInt } from './common.js';

export function registerSynthCommand(program: Command): void {
  program
    .command('synth')
    .description('write a synthetic index roster, query set and truth file (deterministic for a seed)')
    .requiredOption('--members <n>', 'members in the index roster', positiveInt)
    .requiredOption('--queries <n>', 'queries to generate', positiveInt)
    .option('--seed <n>', 'random seed', positiveInt, 1)
    .requiredOption('--out <dir>', 'output folder (roster.csv, queries.ndjson, truth.csv)')
    .action(async (options: { members: number; queries: number; seed: number; out: string }) => {
      const summary = await runSynth(options);
      console.log(JSON.stringify(summary));
    });
}

import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { activateModel, DEFAULT_MODEL_FILE, ensureActiveModel, listModels, readModelFile, saveModel } from '../../members/model-store.js';
import { printTable } from '../output.js';
import { readTruth } from '../../../tools/evaluation/files.js';
import { trainModel } from '../../../tools/evaluation/train.js';
import { withDb, positiveInt, withIndex, type IndexOptions } from './common.js';

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('Fellegi–Sunter matching models');
  model
    .command('train')
    .description('estimate u from random member pairs and m by EM over blocked pairs (or from labelled pairs with --truth)')
    .requiredOption('--index <roster>', 'index roster, loaded into a scratch database of its own')
    .requiredOption('--queries <file>', 'queries.ndjson whose blocked pairs train m')
    .option('--truth <file>', 'truth.csv: fit m from labelled pairs instead of EM')
    .option('--seed <n>', 'random seed for the u sample', positiveInt, 1)
    .requiredOption('--out <file>', 'where to write the model JSON (a new file, unless --force)')
    .option('--force', 'overwrite --out if it exists (the shipped model included)')
    .action(async (options: IndexOptions & { seed: number; out: string; force?: boolean }) => {
      // Refused before the (long) training, not after it.
      await refuseOverwrite(options.out, !!options.force);
      await withIndex(options, async (db, config) => {
        const trained = await trainModel(db, {
          queriesFile: options.queries,
          truth: options.truth ? await readTruth(options.truth) : undefined,
          seed: options.seed,
          blockCap: config.blockCap,
          log: (m) => console.error(m),
        });
        await writeFile(options.out, `${JSON.stringify(trained, null, 2)}\n`);
        console.log(trained.version);
      });
    });
  model
    .command('load')
    .argument('<file>', 'a model JSON file written by `model train`')
    .option('--activate', 'make it the active model')
    .description('store a model in the service database')
    .action((file: string, options: { activate?: boolean }) =>
      withDb(async (db) => {
        const stored = readModelFile(file);
        await db.transaction().execute((trx) => saveModel(trx, stored, !!options.activate));
        console.log(`${stored.version}${options.activate ? ' (active)' : ''}`);
      }),
    );
  model
    .command('activate')
    .argument('<version>')
    .description('make a stored model the active one (running servers score the next request with it)')
    .action((version: string) => withDb((db) => db.transaction().execute((trx) => activateModel(trx, version))));
  model
    .command('list')
    .description('stored models, newest first')
    .action(() =>
      withDb(async (db) => {
        await ensureActiveModel(db);
        printTable(['ACTIVE', 'VERSION', 'CREATED', 'TRAINING'], (await listModels(db)).map((m) => [m.active ? '*' : '', m.version, m.created_at, m.training]));
      }),
    );
}

/** An existing --out is kept unless --force: above all the shipped model, which `eval` and new databases use. */
async function refuseOverwrite(out: string, force: boolean): Promise<void> {
  if (force) return;
  const exists = await access(out).then(
    () => true,
    () => false,
  );
  if (!exists) return;
  const shipped = path.resolve(out) === path.resolve(DEFAULT_MODEL_FILE);
  throw new InvalidArgumentError(
    `${out} exists${shipped ? ' and is the shipped default model' : ''}; write the new model elsewhere (e.g. --out /tmp/model.json), or add --force to overwrite it`,
  );
}

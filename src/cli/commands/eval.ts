import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_MODEL_FILE, readModelFile } from '../../members/model-store.js';
import { evaluate, formatReport, sweepThresholds, type QueryOutcome } from '../../../tools/evaluation/evaluate.js';
import { readTruth } from '../../../tools/evaluation/files.js';
import { renderReport } from '../../../tools/evaluation/report.js';
import { withIndex, type IndexOptions } from './common.js';

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('measure matching accuracy: the API\'s resolution path over a query set with known answers')
    .requiredOption('--index <roster>', 'index roster (CSV or NDJSON), loaded into a scratch database of its own')
    .requiredOption('--queries <file>', 'queries.ndjson')
    .requiredOption('--truth <file>', 'truth.csv')
    .option('--model <file>', 'a model JSON file (default: the shipped fixtures/models/default.json)')
    .option('--json', 'print the report as JSON')
    .option('--outcomes <file>', 'also write every query\'s decision (references, levels, weights; no demographics) as NDJSON')
    .option('--sweep', 'also re-decide every query over a grid of thresholds and print the trade-off')
    .option('--report <file>', 'also write a self-contained HTML page: threshold trade-off, match-weight histograms, sampled decisions field by field')
    .action((options: IndexOptions & { truth: string; model?: string; json?: boolean; outcomes?: string; sweep?: boolean; report?: string }) =>
      withIndex(options, async (db, config) => {
        const model = readModelFile(options.model ?? DEFAULT_MODEL_FILE);
        const outcomes: QueryOutcome[] = [];
        // Outcomes are recorded with the lowest lower threshold of the sweep, so every candidate a grid point
        // could act on is kept.
        const thresholds = options.sweep || options.report ? { ...config.matchThresholds, lower: Math.min(0.01, config.matchThresholds.lower) } : config.matchThresholds;
        const measured = await evaluate(db, { model, thresholds, blockCap: config.blockCap }, options.queries, await readTruth(options.truth), {
          onOutcome: (o) => outcomes.push(o),
        });
        // The figures printed are at the configured thresholds, whatever lower one the outcomes were recorded with.
        const atConfigured = thresholds === config.matchThresholds ? measured : sweepThresholds(outcomes, [config.matchThresholds])[0]!.report;
        const report = { ...atConfigured, metrics: { ...atConfigured.metrics, decisionsPerSecond: measured.metrics.decisionsPerSecond } };
        if (options.report) {
          const title = `Matching accuracy: ${model.version} on ${path.basename(options.queries)}`;
          await writeFile(options.report, renderReport({ report, outcomes, model, thresholds: config.matchThresholds, title }));
          console.error(`report written to ${options.report}`);
        }
        if (options.outcomes) await writeFile(options.outcomes, outcomes.map((o) => JSON.stringify(o)).join('\n') + '\n');
        if (options.sweep) {
          console.log('upper      lower  margin  false-matches  auto-recall  recall(auto+review)  review-rate');
          for (const { thresholds: t, report: r } of sweepThresholds(outcomes, thresholdGrid())) {
            const wrong = r.falseMatches.memberConfusedWithMember + r.falseMatches.nonMemberMatched;
            console.log(`${String(t.upper).padEnd(10)} ${String(t.lower).padEnd(6)} ${String(t.marginBits).padEnd(7)} ${String(wrong).padEnd(14)} ${(r.metrics.autoRecall * 100).toFixed(2).padEnd(12)} ${(r.metrics.recallAutoPlusReview * 100).toFixed(2).padEnd(20)} ${(r.metrics.reviewRate * 100).toFixed(2)}`);
          }
        }
        console.log(options.json ? JSON.stringify({ modelVersion: model.version, thresholds: config.matchThresholds, ...report }, null, 2) : `model ${model.version}\n${formatReport(report)}`);
      }),
    );
}

function thresholdGrid() {
  const grid = [];
  for (const upper of [0.999, 0.9999, 0.99999, 0.999999, 0.9999999]) {
    for (const lower of [0.5, 0.99, 0.999, 0.9999, 0.99999]) {
      if (lower >= upper) continue;
      for (const marginBits of [3, 6, 10]) grid.push({ upper, lower, marginBits });
    }
  }
  return grid;
}

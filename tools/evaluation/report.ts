import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { DecisionThresholds } from '../../src/matching/decision.js';
import type { MatchModel } from '../../src/matching/model.js';
import { priorWeight } from '../../src/matching/model.js';
import { sweepThresholds, type EvaluationReport, type QueryOutcome } from './evaluate.js';

/**
 * `member-match eval --report FILE.html`: one self-contained page (Chart.js inlined from node_modules, no CDN,
 * no network) with what the text report cannot show — the threshold trade-off, the match-weight histograms
 * of true and false pairs, and a field-by-field waterfall of sampled decisions. It names queries by their
 * evaluation ids and fields by their comparison levels: no demographics, no member identifiers.
 */

export interface ReportInput {
  report: EvaluationReport;
  /** Outcomes recorded with the lowest lower threshold of interest (see `eval --sweep`), so a sweep can act on every candidate. */
  outcomes: readonly QueryOutcome[];
  model: MatchModel;
  thresholds: DecisionThresholds;
  title: string;
}

/** Probability ↔ match weight in bits. */
const bits = (probability: number) => Math.log2(probability / (1 - probability));
const probabilityOf = (weight: number) => 1 / (1 + 2 ** -weight);

interface Curve {
  label: string;
  weights: number[];
  autoRecall: number[];
  recallWithReview: number[];
  reviewRate: number[];
  falseMatchRate: number[];
}

/** Re-decides every outcome at each weight, moving one threshold and keeping the other as configured. */
function tradeOff(input: ReportInput, which: 'upper' | 'lower'): Curve {
  const configured = bits(input.thresholds[which]);
  const weights: number[] = [];
  for (let w = Math.floor(configured) - 10; w <= Math.ceil(configured) + 10; w++) weights.push(w);
  const grid = weights.map((w) => {
    const t = { ...input.thresholds, [which]: probabilityOf(w) };
    // Keep lower ≤ upper: a lower threshold above the upper one means "no review band".
    if (t.lower > t.upper) t[which === 'upper' ? 'lower' : 'upper'] = t[which];
    return t;
  });
  const results = sweepThresholds(input.outcomes, grid);
  return {
    label: which,
    weights,
    autoRecall: results.map((r) => r.report.metrics.autoRecall),
    recallWithReview: results.map((r) => r.report.metrics.recallAutoPlusReview),
    reviewRate: results.map((r) => r.report.metrics.reviewRate),
    falseMatchRate: results.map((r) => r.report.metrics.falseMatchRate),
  };
}

/** Histogram (2-bit bins) of the match weights of true pairs and of false pairs among the kept candidates. */
function histograms(outcomes: readonly QueryOutcome[]) {
  const width = 2;
  const truePairs = new Map<number, number>();
  const falsePairs = new Map<number, number>();
  for (const o of outcomes) {
    for (const c of o.decision?.top ?? []) {
      const bin = Math.floor(c.matchWeight / width) * width;
      const into = o.truth?.memberId === c.memberId ? truePairs : falsePairs;
      into.set(bin, (into.get(bin) ?? 0) + 1);
    }
  }
  const all = [...truePairs.keys(), ...falsePairs.keys()];
  const bins: number[] = [];
  if (all.length > 0) for (let b = Math.min(...all); b <= Math.max(...all); b += width) bins.push(b);
  return { bins, truePairs: bins.map((b) => truePairs.get(b) ?? 0), falsePairs: bins.map((b) => falsePairs.get(b) ?? 0) };
}

/** A few decisions of each kind, chosen deterministically (every k-th), drawn as prior + field weights. */
function waterfalls(input: ReportInput, perOutcome = 3) {
  const prior = priorWeight(input.model.parameters);
  const picked: { title: string; steps: { label: string; from: number; to: number }[] }[] = [];
  for (const kind of ['matched', 'review', 'no-match'] as const) {
    const of = input.outcomes.filter((o) => o.decision?.outcome === kind && o.decision.top.length > 0);
    const step = Math.max(1, Math.floor(of.length / perOutcome));
    for (let i = 0, n = 0; i < of.length && n < perOutcome; i += step, n++) {
      const o = of[i]!;
      const best = o.decision!.top[0]!;
      const truth = !o.truth?.memberId ? 'not a member' : o.truth.memberId === best.memberId ? 'true pair' : 'false pair';
      let at = prior;
      const steps = [{ label: 'prior', from: 0, to: prior }];
      for (const e of best.explanation) {
        if (e.level === 'missing' || e.discounted) continue;
        steps.push({ label: `${e.field}: ${e.level}`, from: at, to: at + e.weight });
        at += e.weight;
      }
      steps.push({ label: 'match weight', from: 0, to: best.matchWeight });
      const reason = 'reason' in o.decision! ? ` (${o.decision.reason})` : '';
      picked.push({ title: `${o.queryId}: ${kind}${reason}, best candidate a ${truth}`, steps });
    }
  }
  return picked;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON safe inside a <script> element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

export function renderReport(input: ReportInput): string {
  const require = createRequire(import.meta.url);
  // The UMD build sits beside the package's main file (chart.js's exports map does not list it).
  const chartJs = readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const m = input.report.metrics;
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const data = {
    upper: tradeOff(input, 'upper'),
    lower: tradeOff(input, 'lower'),
    histogram: histograms(input.outcomes),
    waterfalls: waterfalls(input),
    thresholds: { upper: bits(input.thresholds.upper), lower: bits(input.thresholds.lower) },
  };
  const rows: [string, string][] = [
    ['model', input.model.version],
    ['thresholds', `upper ${input.thresholds.upper} (${data.thresholds.upper.toFixed(1)} bits), lower ${input.thresholds.lower} (${data.thresholds.lower.toFixed(1)} bits), margin ${input.thresholds.marginBits} bits`],
    ['queries', `${input.report.queries} (${input.report.memberQueries} members, ${input.report.nonMemberQueries} non-members)`],
    ['false matches', `${input.report.falseMatches.memberConfusedWithMember + input.report.falseMatches.nonMemberMatched} (${pct(m.falseMatchRate)})`],
    ['auto-match recall', pct(m.autoRecall)],
    ['recall auto + review', pct(m.recallAutoPlusReview)],
    ['review rate', pct(m.reviewRate)],
    ['blocking recall', pct(m.blockingRecall)],
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(input.title)}</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1a1a1a; }
  table { border-collapse: collapse; } td, th { padding: .2rem .8rem .2rem 0; text-align: left; vertical-align: top; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 1.5rem; }
  figure { margin: 0; } figcaption { font-size: .9rem; color: #444; }
  canvas { max-height: 22rem; }
</style>
</head>
<body>
<h1>${escape(input.title)}</h1>
<p>Produced by <code>member-match eval --report</code>. Every decision was made by the service's own path (parse → normalise →
block → compare → score → decide); the curves re-decide the same candidates under other thresholds. No demographics or member
identifiers appear here: queries are named by their evaluation ids, fields by their comparison levels.</p>
<table>${rows.map(([k, v]) => `<tr><th scope="row">${escape(k)}</th><td>${escape(v)}</td></tr>`).join('')}</table>
<h2>Threshold trade-off</h2>
<div class="charts">
<figure><canvas id="upper" role="img" aria-label="Rates as the upper (auto-match) threshold moves"></canvas>
<figcaption>Moving the upper (auto-match) threshold, the lower one as configured. Dashed line: the configured value.</figcaption></figure>
<figure><canvas id="lower" role="img" aria-label="Rates as the lower (review) threshold moves"></canvas>
<figcaption>Moving the lower (review) threshold, the upper one as configured.</figcaption></figure>
</div>
<h2>Match weights of true and false pairs</h2>
<figure><canvas id="histogram" role="img" aria-label="Histogram of match weights"></canvas>
<figcaption>The best three candidates of every query, by whether the candidate is the query's true member (log scale).</figcaption></figure>
<h2>Sampled decisions, field by field</h2>
<div class="charts" id="waterfalls"></div>
<script>${chartJs}</script>
<script>
const data = ${scriptJson(data)};
const percent = (v) => (v * 100).toFixed(1) + ' %';
function trade(id, curve, configured) {
  const series = [
    ['auto-match recall', curve.autoRecall, '#1b6ac9'],
    ['recall auto + review', curve.recallWithReview, '#2e8540'],
    ['review rate', curve.reviewRate, '#b35c00'],
    ['false-match rate', curve.falseMatchRate, '#c0182c'],
  ];
  new Chart(document.getElementById(id), {
    type: 'line',
    data: { labels: curve.weights, datasets: series.map(([label, values, color]) => ({ label, data: values, borderColor: color, backgroundColor: color, pointRadius: 2 })) },
    options: {
      animation: false,
      scales: { x: { title: { display: true, text: curve.label + ' threshold (match weight, bits)' } }, y: { min: 0, max: 1, ticks: { callback: percent } } },
      plugins: { tooltip: { callbacks: { label: (c) => c.dataset.label + ': ' + percent(c.parsed.y) } } },
    },
    plugins: [{ id: 'configured', afterDraw(chart) {
      const x = chart.scales.x.getPixelForValue(curve.weights.indexOf(Math.round(configured)));
      const ctx = chart.ctx; ctx.save(); ctx.setLineDash([4, 4]); ctx.strokeStyle = '#555';
      ctx.beginPath(); ctx.moveTo(x, chart.chartArea.top); ctx.lineTo(x, chart.chartArea.bottom); ctx.stroke(); ctx.restore();
    } }],
  });
}
trade('upper', data.upper, data.thresholds.upper);
trade('lower', data.lower, data.thresholds.lower);
new Chart(document.getElementById('histogram'), {
  type: 'bar',
  data: { labels: data.histogram.bins, datasets: [
    { label: 'true pairs', data: data.histogram.truePairs, backgroundColor: '#2e8540' },
    { label: 'false pairs', data: data.histogram.falsePairs, backgroundColor: '#c0182c' },
  ] },
  options: { animation: false, scales: { x: { title: { display: true, text: 'match weight (bits, 2-bit bins)' } }, y: { type: 'logarithmic', title: { display: true, text: 'pairs' } } } },
});
for (const [i, w] of data.waterfalls.entries()) {
  const figure = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', 'Field weights of ' + w.title);
  const caption = document.createElement('figcaption');
  caption.textContent = w.title;
  figure.append(canvas, caption);
  document.getElementById('waterfalls').append(figure);
  new Chart(canvas, {
    type: 'bar',
    data: { labels: w.steps.map((s) => s.label), datasets: [{
      label: 'bits', data: w.steps.map((s) => [s.from, s.to]),
      backgroundColor: w.steps.map((s, k) => (k === 0 || k === w.steps.length - 1 ? '#555' : s.to >= s.from ? '#2e8540' : '#c0182c')),
    }] },
    options: { animation: false, indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: 'match weight (bits)' } } } },
  });
}
</script>
</body>
</html>
`;
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { metrics } from '../src/metrics.js';

/**
 * deploy/prometheus/alerts.yml and deploy/grafana/member-match.json name the service's metrics by hand: every
 * series they select, and every label they match on, must be one the service exports (src/metrics.ts, the
 * default process metrics, and Prometheus' own `up`), so renaming a metric or a label fails here rather than
 * silently blinding an alert. Rules are also checked for the fields Alertmanager routing and the runbook need.
 */

interface Selector {
  name: string;
  labels: string[];
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The series selectors of a PromQL expression: metric names (not functions or keywords) and the labels matched. */
function selectors(expr: string): Selector[] {
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values, whatever they hold
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\[[^\]]*\]/g, ' '); // range durations ([5m], [$__rate_interval])
  const found: Selector[] = [];
  for (const m of text.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?/g)) {
    const [, name, matchers, call] = m;
    if (call || KEYWORDS.has(name!.toLowerCase())) continue;
    found.push({ name: name!, labels: [...(matchers ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) });
  }
  return found;
}

/** What the service exports: series names (histograms as their _bucket/_count/_sum) and each one's labels. */
function exportedSeries(): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>([['up', new Set()]]);
  for (const metric of metrics.getMetricsAsArray() as unknown as { name: string; labelNames?: string[]; constructor: { name: string } }[]) {
    const labels = new Set(metric.labelNames ?? []);
    if (metric.constructor.name === 'Histogram') {
      series.set(`${metric.name}_bucket`, new Set([...labels, 'le']));
      series.set(`${metric.name}_count`, labels);
      series.set(`${metric.name}_sum`, labels);
    } else series.set(metric.name, labels);
  }
  return series;
}

const TARGET_LABELS = ['job', 'instance'];

/** The problems of an expression: series the service does not export, and labels those series do not have. */
function problems(expr: string): string[] {
  const series = exportedSeries();
  const found = selectors(expr);
  const out: string[] = [];
  if (found.length === 0) out.push('selects no series');
  for (const { name, labels } of found) {
    const known = series.get(name);
    if (!known) out.push(`unknown metric ${name}`);
    else for (const label of labels) if (!known.has(label) && !TARGET_LABELS.includes(label)) out.push(`${name} has no label ${label}`);
  }
  let depth = 0;
  for (const c of expr) {
    depth += c === '(' ? 1 : c === ')' ? -1 : 0;
    if (depth < 0) break;
  }
  if (depth !== 0) out.push('unbalanced parentheses');
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
const anchors = new Set(
  readFileSync('docs/operations.md', 'utf8')
    .split('\n')
    .filter((line) => /^#{1,6} /.test(line))
    .map((line) => line.replace(/^#+ /, '').trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')),
);

interface Rule {
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rulesFile = parse(readFileSync('deploy/prometheus/alerts.yml', 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
const rules = rulesFile.groups.flatMap((group) => group.rules);

describe('the expression checker', () => {
  it('finds series and their matched labels, not functions, keywords, grouping labels or durations', () => {
    expect(selectors('sum by (le, route) (rate(a_total{route="/x", status=~"5.."}[5m])) / on (job) b > 0.5')).toEqual([
      { name: 'a_total', labels: ['route', 'status'] },
      { name: 'b', labels: [] },
    ]);
  });

  it('fails a renamed metric or label', () => {
    expect(problems('rate(member_match_refusals_total[5m])')).toEqual([]);
    expect(problems('rate(member_match_refusal_total[5m])')).toEqual(['unknown metric member_match_refusal_total']);
    expect(problems('member_match_queue_jobs{queue="batch", kind="x"}')).toEqual(['member_match_queue_jobs has no label kind']);
    expect(problems('sum(rate(member_match_http_request_duration_seconds_bucket{le="1"}[5m])')).toEqual(['unbalanced parentheses']);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it('is a Prometheus rule file: named groups of rules, each alert named once', () => {
    expect(rulesFile.groups.length).toBeGreaterThan(0);
    for (const group of rulesFile.groups) {
      expect(group.name).toMatch(/^member-match\./);
      expect(group.rules.length).toBeGreaterThan(0);
    }
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each(rules.map((rule) => [rule.alert ?? '(unnamed)', rule] as const))('%s selects only exported series, with severity, summary and a runbook', (_name, rule) => {
    expect(rule.alert).toMatch(/^MemberMatch[A-Z][A-Za-z]+$/);
    expect(typeof rule.expr).toBe('string');
    expect(problems(rule.expr!)).toEqual([]);
    if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
    expect(['critical', 'warning', 'info']).toContain(rule.labels?.severity);
    expect(rule.annotations?.summary).toBeTruthy();
    const runbook = /docs\/operations\.md#([\w-]+)/.exec(rule.annotations?.runbook ?? '');
    expect(runbook, 'runbook names a section of docs/operations.md').not.toBeNull();
    expect(anchors.has(runbook![1]!), `docs/operations.md has a section #${runbook![1]}`).toBe(true);
  });

  it('covers SLA breaches, queue age, lockouts, audit checkpoint failures and the error rate', () => {
    const used = new Set(rules.flatMap((r) => selectors(r.expr!).map((s) => s.name)));
    for (const name of [
      'member_match_review_cases_overdue',
      'member_match_queue_oldest_waiting_seconds',
      'member_match_lockouts_total',
      'member_match_audit_checkpoint_failures_total',
      'member_match_http_request_duration_seconds_count',
    ]) {
      expect(used, name).toContain(name);
    }
  });
});

describe('deploy/grafana/member-match.json', () => {
  const dashboard = JSON.parse(readFileSync('deploy/grafana/member-match.json', 'utf8')) as {
    uid: string;
    panels: { id: number; title: string; type: string; targets?: { expr: string }[] }[];
  };
  const graphs = dashboard.panels.filter((panel) => panel.type !== 'row');

  it('is a dashboard with unique panel ids', () => {
    expect(dashboard.uid).toBe('member-match');
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(graphs.map((panel) => [panel.title, panel] as const))('%s queries only exported series', (_title, panel) => {
    expect(panel.targets?.length).toBeGreaterThan(0);
    for (const target of panel.targets!) expect(problems(target.expr)).toEqual([]);
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  it('scrapes the metrics port and loads the alert rules', () => {
    const config = parse(readFileSync('deploy/prometheus/prometheus.yml', 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toContain('alerts.yml');
    const job = config.scrape_configs.find((c) => c.job_name === 'member-match');
    expect(job?.metrics_path).toBe('/metrics');
    expect(job?.static_configs.flatMap((c) => c.targets)).toContain('member-match:9464');
  });
});

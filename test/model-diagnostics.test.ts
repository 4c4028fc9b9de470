import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/matching/decision.js';
import { checkModel, DIAGNOSTIC_LIMITS } from '../src/matching/diagnostics.js';
import { activateModel, DEFAULT_MODEL_FILE, loadActiveModel, readModelFile, saveModel, type StoredModel } from '../src/members/model-store.js';
import { startTestService, type TestService } from './support/service.js';

/**
 * Issue 12: a trained model carries its diagnostics — m and u per level, EM convergence, and the estimated
 * error rates at the thresholds — and is activated only when they pass.
 */
const shipped = readModelFile(DEFAULT_MODEL_FILE);

/** The shipped model with the given name's evidence turned upside down: agreeing would count against a match. */
function brokenModel(): StoredModel {
  const parameters = structuredClone(shipped.parameters);
  const exact = parameters.fields.given.exact!;
  parameters.fields.given.exact = { m: exact.u, u: exact.m };
  const diagnostics = checkModel(parameters, DEFAULT_THRESHOLDS);
  return { version: 'test-broken-given', parameters, training: { method: 'test', diagnostics } };
}

describe('model diagnostics', () => {
  it('states the thresholds as match weights with estimated error rates, and the shipped model passes', () => {
    const d = checkModel(shipped.parameters, DEFAULT_THRESHOLDS, (shipped.training as { sessions?: { session: string; converged: boolean }[] }).sessions);
    expect(d.upper.matchWeight).toBeCloseTo(19.93, 2);
    expect(d.lower.matchWeight).toBeCloseTo(16.61, 2);
    expect(d.upper.falsePositivePerPair).toBeLessThanOrEqual(DIAGNOSTIC_LIMITS.maxFalsePositivePerPairAtUpper);
    expect(d.lower.truePairRecall).toBeGreaterThanOrEqual(DIAGNOSTIC_LIMITS.minTruePairRecallAtLower);
    // A lower threshold lets more of both through.
    expect(d.lower.falsePositivePerPair).toBeGreaterThanOrEqual(d.upper.falsePositivePerPair);
    expect(d.lower.truePairRecall).toBeGreaterThanOrEqual(d.upper.truePairRecall);
    expect(d.passed).toBe(true);
    // The shipped file carries the same diagnostics it was trained with.
    expect((shipped.training as { diagnostics?: { passed: boolean } }).diagnostics?.passed).toBe(true);
  });

  it('fails a model whose evidence points the wrong way, or whose thresholds let too many strangers through', () => {
    const broken = brokenModel().training.diagnostics as ReturnType<typeof checkModel>;
    expect(broken.passed).toBe(false);
    expect(broken.checks.find((c) => c.check.startsWith('given'))?.passed).toBe(false);
    const loose = checkModel(shipped.parameters, { upper: 0.6, lower: 0.5, marginBits: 10 });
    expect(loose.checks.find((c) => c.check.startsWith('false positives'))?.passed).toBe(false);
    const stalled = checkModel(shipped.parameters, DEFAULT_THRESHOLDS, [{ session: 'd', converged: false }]);
    expect(stalled.passed).toBe(false);
  });
});

describe('activation', () => {
  let ts: TestService;
  beforeAll(async () => {
    ts = await startTestService();
  });
  afterAll(() => ts?.stop());

  it('refuses a model that failed its diagnostics, unless forced, and leaves the active model alone', async () => {
    const db = ts.service.deps.db;
    const before = (await loadActiveModel(db))!.version;
    await expect(saveModel(db, brokenModel(), true)).rejects.toThrow(/failed its diagnostics.*given/);
    expect((await loadActiveModel(db))!.version).toBe(before);
    await expect(activateModel(db, 'test-broken-given')).rejects.toThrow(/failed its diagnostics/);
    expect((await loadActiveModel(db))!.version).toBe(before);
    await activateModel(db, 'test-broken-given', { force: true });
    expect((await loadActiveModel(db))!.version).toBe('test-broken-given');
    await activateModel(db, before);
  });
});

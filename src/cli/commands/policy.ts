import type { Command } from 'commander';
import { loadPolicyEngine } from '../../policy/cedar-policy.js';
import { POLICY_TESTS_FILE, readPolicyTests, runPolicyTests } from '../../policy/policy-tests.js';

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('authorization policy (Cedar, src/policy/cedar)');
  policy
    .command('test')
    .option('--file <file>', 'a policy test table', POLICY_TESTS_FILE)
    .description('run the policy test table against the policy set; exit 1 on any unexpected decision')
    .action((options: { file: string }) => {
      const engine = loadPolicyEngine();
      const results = runPolicyTests(engine, readPolicyTests(options.file));
      console.log(`policy set ${engine.version}`);
      for (const r of results) console.log(`${r.passed ? 'ok  ' : 'FAIL'} ${r.name} → ${r.got.decision} (${r.got.policies.join(', ') || 'no policy'}; ${r.got.reason})`);
      const failed = results.filter((r) => !r.passed).length;
      console.log(`${results.length - failed} passed, ${failed} failed`);
      if (failed > 0) process.exitCode = 1;
    });
}

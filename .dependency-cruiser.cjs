/**
 * Dependency rules checked in CI (`npm run depcheck`, run by .ci/run after lint).
 *
 * 1. no-circular: no import cycle among src/ modules. Type-only imports (`import type`, which
 *    verbatimModuleSyntax makes explicit) count too: dependency-cruiser finds one cycle per import and only then
 *    applies a rule's `viaOnly` filter, so excluding cycles "through a type-only import" could hide a runtime
 *    cycle behind a type-only one; and a type cycle still ties two modules together.
 * 2. matching-is-pure: src/matching (the matching engine) imports no storage, HTTP or queue code, neither
 *    project modules nor the npm packages behind them, not even their types.
 * 3. no-reaching-up: a request flows one way (http → pipeline → matching / members / review / …); only the
 *    process entry points (src/service.ts, src/main.ts) may import the HTTP layer, and the match pipeline imports
 *    neither HTTP nor the batch machinery that calls it.
 */
/* global module */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'This import is part of a cycle among src/ modules. Break it: move the shared part into a module both can import.',
      from: { path: '^src/' },
      to: { path: '^src/', circular: true },
    },
    {
      name: 'matching-is-pure',
      severity: 'error',
      comment:
        'src/matching is the pure matching engine: it must not import storage, HTTP or queue code. ' +
        'Pass the data in (or inject a function) from the caller instead.',
      from: { path: '^src/matching/' },
      to: {
        path: [
          '^src/(db|members|batch|http|review|audit|pipeline|links)(/|[.]ts$)',
          '(^|/)node_modules/(kysely|pg|express|bullmq|ioredis)/',
          // Imports that do not resolve (a package not installed) still name the package.
          '^(kysely|pg|express|bullmq|ioredis)(/|$)',
        ],
      },
    },
    {
      name: 'no-reaching-up',
      severity: 'error',
      comment: 'Only the HTTP layer and the entry points import src/http; the pipeline is called by src/http and src/batch, never the reverse.',
      from: { path: '^src/', pathNot: '^src/(http/|service[.]ts$|main[.]ts$)' },
      to: { path: '^src/http/' },
    },
    {
      name: 'pipeline-stays-below-its-doors',
      severity: 'error',
      comment: 'src/pipeline is called by the doors (src/http, src/batch); it must not import them.',
      from: { path: '^src/pipeline/' },
      to: { path: ['^src/http/', '^src/batch/', '(^|/)node_modules/(express|bullmq)/', '^(express|bullmq)(/|$)'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'This import does not resolve to a file or an installed package, so the rules above cannot see through it.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too (see rule 1).
    tsPreCompilationDeps: true,
    // NodeNext: `./x.js` in an import is src/x.ts.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};

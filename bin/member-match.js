#!/usr/bin/env node
// The CLI runs straight from the TypeScript sources through tsx, so `npx member-match` works on a fresh
// clone without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');

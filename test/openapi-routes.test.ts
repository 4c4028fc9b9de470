import { readFileSync } from 'node:fs';
import type { Express } from 'express';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.js';
import { projectFile } from '../src/project-files.js';
import { startTestService, type TestService } from './support/service.js';

/**
 * The contract (issue 14): openapi.yaml documents exactly the routes the app mounts — every method and path,
 * no more, no fewer — and every operation lists the statuses every route can answer. A route added without its
 * spec, or a spec entry whose route went away, fails here. The app is built with DEV_MODE=true so the
 * development IdP's routes are mounted (and documented) too.
 */
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

interface Operation {
  security?: unknown[];
  parameters?: { name?: string; in?: string; $ref?: string }[];
  responses: Record<string, unknown>;
}
type PathItem = Partial<Record<(typeof HTTP_METHODS)[number], Operation>> & { 'x-listener'?: string; 'x-mount'?: string; parameters?: Operation['parameters'] };
interface Spec {
  paths: Record<string, PathItem>;
  security?: unknown[];
}

let ts: TestService;
let app: Express;
const spec = parse(readFileSync(projectFile('openapi.yaml'), 'utf8')) as Spec;

beforeAll(async () => {
  ts = await startTestService({ DEV_MODE: 'true' });
  app = createApp(ts.service.deps);
}, 60_000);
afterAll(() => ts?.stop());

/** `/fhir/Patient/:id/` and `/fhir/Patient/{id}` both become `/fhir/Patient/{}`. */
function normalise(path: string): string {
  const joined = path.replace(/\/{2,}/g, '/').replace(/:[A-Za-z0-9_]+/g, '{}').replace(/\{[^}]+\}/g, '{}');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
}

interface Layer {
  rawPath?: string | string[];
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/**
 * `METHOD path` for every route the app mounts. A route's `_all` handler (a 405 fallback) is not a method of
 * its own; a mounted router with no routes of its own (the queue dashboard, bull-board's Express app) is a
 * mount, documented by its path: `* path`.
 */
function mountedRoutes(stack: Layer[], prefix = ''): string[] {
  const found: string[] = [];
  for (const layer of stack) {
    const at = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all')) {
        found.push(`${method.toUpperCase()} ${normalise(`${prefix}${layer.route.path}`)}`);
      }
    } else if (layer.handle?.stack) {
      const inner = mountedRoutes(layer.handle.stack, `${prefix}${at}`);
      found.push(...(inner.length > 0 ? inner : [`* ${normalise(`${prefix}${at}`)}`]));
    }
  }
  return found;
}

/**
 * `METHOD path` for every operation of the spec, but those on another listener (`x-listener`: /metrics) and
 * mounted applications (`x-mount`: the queue dashboard, whose own routes are bull-board's), which are paths.
 */
function specifiedRoutes(): { routes: string[]; mounts: string[] } {
  const routes: string[] = [];
  const mounts: string[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    if (item['x-listener']) continue;
    if (item['x-mount']) mounts.push(normalise(path));
    else for (const method of HTTP_METHODS) if (item[method]) routes.push(`${method.toUpperCase()} ${normalise(path)}`);
  }
  return { routes, mounts };
}

function operations(): { name: string; operation: Operation; path: string }[] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((m) => item[m] && !item['x-listener']).map((m) => ({ name: `${m.toUpperCase()} ${path}`, operation: item[m]!, path })),
  );
}

describe('openapi.yaml and the mounted routes', () => {
  it('documents every mounted route, and nothing that is not mounted', () => {
    const mounted = mountedRoutes((app as unknown as { router: { stack: Layer[] } }).router.stack);
    const { routes, mounts } = specifiedRoutes();
    const mountedRoutesOnly = mounted.filter((r) => !r.startsWith('* '));
    expect([...new Set(mountedRoutesOnly)].sort(), 'mounted routes (left) vs openapi.yaml operations (right)').toEqual([...new Set(routes)].sort());
    expect(mounted.filter((r) => r.startsWith('* ')).map((r) => r.slice(2)).sort(), 'mounted applications vs x-mount paths').toEqual(mounts.sort());
  });

  it('lists on every operation the answers any route can give: 400 (unreadable request), 500, 503 (audit unavailable)', () => {
    for (const { name, operation } of operations()) {
      for (const status of ['400', '500', '503']) expect(Object.keys(operation.responses), `${name} lists ${status}`).toContain(status);
    }
  });

  it('lists 401, 403 and 429 on every secured operation', () => {
    for (const { name, operation } of operations()) {
      const security = operation.security ?? spec.security ?? [];
      if (security.length === 0) continue;
      for (const status of ['401', '403', '429']) expect(Object.keys(operation.responses), `${name} lists ${status}`).toContain(status);
    }
  });

  it('lists 428 and 412 wherever If-Match is required', () => {
    for (const { name, operation, path } of operations()) {
      const parameters = [...(spec.paths[path]!.parameters ?? []), ...(operation.parameters ?? [])];
      if (!parameters.some((p) => p.name === 'If-Match' || p.$ref?.endsWith('/IfMatch'))) continue;
      for (const status of ['412', '428']) expect(Object.keys(operation.responses), `${name} lists ${status}`).toContain(status);
    }
  });

  it('lists 202 and 429 on $member-match', () => {
    const memberMatch = spec.paths['/fhir/Patient/$member-match']!.post!;
    expect(Object.keys(memberMatch.responses)).toEqual(expect.arrayContaining(['200', '202', '422', '429']));
  });
});

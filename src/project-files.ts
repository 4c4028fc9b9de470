import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project root: the nearest folder above this module that holds package.json. Source runs from `src/`
 * (tsx) and the build from `dist/src/`, so a fixed `../` would be right in one and wrong in the other.
 */
function findProjectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'fixtures'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('project root not found (package.json beside fixtures/)');
    dir = parent;
  }
}

export const projectRoot = findProjectRoot();

/** An absolute path to a file shipped with the project, e.g. `projectFile('fixtures', 'nicknames.csv')`. */
export function projectFile(...segments: string[]): string {
  return path.join(projectRoot, ...segments);
}

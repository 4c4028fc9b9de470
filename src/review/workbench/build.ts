import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectFile } from '../../project-files.js';

/**
 * The reviewer workbench's browser code (./app, Preact + htm) bundled by esbuild into three static files:
 * index.html, app.js and app.css. `npm run build:ui` (and so `npm run build`) writes them to dist/workbench,
 * where the built server and the image find them; the server bundles in memory instead when they are missing
 * or older than the sources (src/http/routes/workbench.ts), so `npm start` and the tests never serve a stale
 * or absent workbench. No CDN: everything the page loads comes from this bundle.
 */
export const WORKBENCH_SOURCE_DIR = projectFile('src', 'review', 'workbench', 'app');
export const WORKBENCH_BUILD_DIR = projectFile('dist', 'workbench');
export const WORKBENCH_FILES = ['index.html', 'app.js', 'app.css'] as const;
export type WorkbenchFile = (typeof WORKBENCH_FILES)[number];
export type WorkbenchAssets = Record<WorkbenchFile, Buffer>;

/** Bundles the workbench in memory. esbuild is a development dependency, so it is imported only here, when called. */
export async function bundleWorkbench(): Promise<WorkbenchAssets> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: path.join(WORKBENCH_SOURCE_DIR, 'main.ts'), 'app-style': path.join(WORKBENCH_SOURCE_DIR, 'style.css') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    minify: true,
    legalComments: 'none',
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  });
  const output = (name: string) => {
    const file = result.outputFiles.find((f) => path.basename(f.path) === name);
    if (!file) throw new Error(`esbuild produced no ${name}`);
    return Buffer.from(file.contents);
  };
  return {
    'index.html': await readFile(path.join(WORKBENCH_SOURCE_DIR, 'index.html')),
    'app.js': output('app.js'),
    'app.css': output('app-style.css'),
  };
}

/** Writes a fresh bundle to `dir` whole: into a sibling first, then renamed, so a reader never sees half of one. */
export async function writeWorkbench(dir = WORKBENCH_BUILD_DIR): Promise<void> {
  const assets = await bundleWorkbench();
  const staging = `${dir}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  for (const name of WORKBENCH_FILES) await writeFile(path.join(staging, name), assets[name]);
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
}

/** The newest modification time among the workbench sources, or undefined when they are not shipped. */
async function newestSource(dir = WORKBENCH_SOURCE_DIR): Promise<number | undefined> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return undefined;
  }
  const times = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => (await stat(path.join(e.parentPath, e.name))).mtimeMs));
  return times.length > 0 ? Math.max(...times) : undefined;
}

/** The built files in `dir` if all are there and none is older than the sources; otherwise undefined. */
export async function readBuiltWorkbench(dir = WORKBENCH_BUILD_DIR): Promise<{ assets: WorkbenchAssets; stale: boolean } | undefined> {
  try {
    const stats = await Promise.all(WORKBENCH_FILES.map((name) => stat(path.join(dir, name))));
    const contents = await Promise.all(WORKBENCH_FILES.map((name) => readFile(path.join(dir, name))));
    const sources = await newestSource();
    const oldest = Math.min(...stats.map((s) => s.mtimeMs));
    const assets = Object.fromEntries(WORKBENCH_FILES.map((name, i) => [name, contents[i]!])) as WorkbenchAssets;
    return { assets, stale: sources !== undefined && sources > oldest };
  } catch {
    return undefined;
  }
}

// `npm run build:ui`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await writeWorkbench();
  console.log(`workbench built into ${path.relative(process.cwd(), WORKBENCH_BUILD_DIR) || '.'}`);
}

import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';

/**
 * The cold-start baseline: a handler as it would ship without a bundler. Every crossdeploy .ts file the
 * handler reaches is transpiled to JavaScript on its own (same target and format as the Lambda bundle, no
 * minification, no source maps), into a tree of the same shape, with every import left as an import.
 * Comparing against `.ts` loaded with Node's type stripping would charge the baseline for stripping types,
 * which no deployed function pays.
 */

export interface UnbundledTree {
  /** Root of the tree: <dir>/functions/..., <dir>/package.json, <dir>/node_modules -> the repository's. */
  dir: string;
  /** Each bundle's logicalId -> the transpiled handler module. */
  handlers: Record<string, string>;
}

/** `./x.ts` and `#shared/x.ts` -> `.js`; packages stay as they are (they resolve to the same node_modules). */
export function toJsSpecifier(specifier: string): string {
  return /^(\.|#)/.test(specifier) ? specifier.replace(/\.ts$/, '.js') : specifier;
}

/** Leaves every import an import (no bundling), with its .ts extension rewritten to the transpiled .js. */
const keepImports: Plugin = {
  name: 'keep-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) =>
      args.kind === 'entry-point' ? undefined : { path: toJsSpecifier(args.path), external: true },
    );
  },
};

/** The crossdeploy sources (not node_modules) one bundle was made from, from its esbuild metafile. */
export function ownSources(inputs: Record<string, unknown>, workingDir: string, root: string): string[] {
  return Object.keys(inputs)
    .filter((path) => !path.includes('node_modules/') && /\.[cm]?ts$/.test(path))
    .map((path) => resolve(workingDir, path))
    .filter((path) => !relative(root, path).startsWith('..'));
}

/**
 * Builds the unbundled tree for every bundle into `dir`. `bundles` are the options `npm run build` uses
 * (scripts/build.ts functionBundles), so the target and format are the Lambda build's; a bundle that comes with
 * the metafile of its build (bench/cold-start.ts has just made it) is not built a second time to find its files.
 */
export async function buildUnbundledTree(
  root: string,
  dir: string,
  bundles: readonly { logicalId: string; options: BuildOptions; metafile?: Metafile }[],
): Promise<UnbundledTree> {
  const sources = new Set<string>();
  const handlers: Record<string, string> = {};
  for (const { logicalId, options, metafile: built } of bundles) {
    const workingDir = options.absWorkingDir as string;
    // Which of our files the handler reaches: esbuild's own resolution, with the bundle's options.
    const metafile =
      built ?? (await build({ ...options, write: false, metafile: true, sourcemap: false })).metafile;
    for (const source of ownSources(metafile.inputs, workingDir, root)) sources.add(source);
    const [entry] = options.entryPoints as string[];
    const entryFile = resolve(workingDir, entry as string);
    handlers[logicalId] = join(dir, relative(root, entryFile)).replace(/\.ts$/, '.js');
  }
  const formats = new Set(bundles.map(({ options }) => options.format ?? 'cjs'));
  const targets = new Set(bundles.map(({ options }) => String(options.target)));
  if (formats.size !== 1 || targets.size !== 1) {
    throw new Error(`one format and target for all bundles expected, got ${[...formats]} / ${[...targets]}`);
  }
  const [format] = [...formats];
  await build({
    absWorkingDir: root,
    entryPoints: [...sources],
    outbase: root,
    outdir: dir,
    bundle: true,
    plugins: [keepImports],
    platform: 'node',
    format,
    target: [...targets],
    minify: false,
    sourcemap: false,
    logLevel: 'warning',
  });
  // The same `imports` aliases (they now name .js files) and the same node_modules as the sources load; .js
  // files of the format the bundles have.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { imports?: unknown };
  const type = format === 'esm' ? 'module' : 'commonjs';
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type, imports: pkg.imports }));
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, handlers };
}

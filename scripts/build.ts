/**
 * `npm run build`: bundles every function the way `sam build` does, with the esbuild settings read from
 * each function's Metadata in template.yaml (there is no second copy of them), into
 * dist/<LogicalId>/, and prints the size of each bundle. Lets bundles be inspected and measured
 * without SAM CLI.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build } from 'esbuild';
import { type CfnTemplate, isRecord, loadTemplate, resourcesOfType } from './cfn-yaml.ts';

export const DIST_DIR = 'dist';

export interface FunctionBundle {
  logicalId: string;
  options: BuildOptions;
  /** Where Lambda will look for the handler module once SAM has flattened the bundle. */
  handlerFile: string;
}

export class BuildConfigError extends Error {
  override readonly name = 'BuildConfigError';
}

const stringList = (value: unknown, what: string): string[] => {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw new BuildConfigError(`${what} must be a list of strings`);
  }
  return value as string[];
};

/** `['.js=.mjs']` -> `{ '.js': '.mjs' }`: SAM passes these as `--flag:key=value`. */
const keyValues = (value: unknown, what: string): Record<string, string> =>
  Object.fromEntries(
    stringList(value, what).map((item) => {
      const at = item.indexOf('=');
      if (at <= 0) throw new BuildConfigError(`${what}: "${item}" is not key=value`);
      return [item.slice(0, at), item.slice(at + 1)];
    }),
  );

// The properties aws-lambda-builders' esbuild workflow understands; anything else would be ignored
// by `sam build` (or fail there), so it fails here first.
const SUPPORTED = new Set([
  'EntryPoints',
  'Format',
  'Target',
  'Minify',
  'Sourcemap',
  'SourcesContent',
  'MainFields',
  'External',
  'Loader',
  'OutExtension',
  'Banner',
]);

/**
 * The esbuild options `sam build` uses for one function: its fixed flags (`--bundle --platform=node
 * --outdir`), its defaults (`--target=es2020 --format=cjs --minify` when unset) and the function's
 * BuildProperties.
 */
export function bundleFor(
  logicalId: string,
  properties: Record<string, unknown>,
  metadata: Record<string, unknown>,
  root: string,
): FunctionBundle {
  const at = `${logicalId}.Metadata.BuildProperties`;
  const props = isRecord(metadata.BuildProperties) ? metadata.BuildProperties : {};
  const unknown = Object.keys(props).filter((key) => !SUPPORTED.has(key));
  if (unknown.length > 0)
    throw new BuildConfigError(`${at}: unsupported by sam build: ${unknown.join(', ')}`);

  const codeUri = typeof properties.CodeUri === 'string' ? properties.CodeUri : '.';
  const workingDir = resolve(root, codeUri);
  // With a package.json in CodeUri, aws-lambda-builders copies the folder and runs `npm install` in the copy
  // (at the repository root: the whole repository and every dev dependency, with install scripts, once per
  // function). Without one it bundles in place, as this script does: only then are the two builds the same.
  if (existsSync(join(workingDir, 'package.json'))) {
    throw new BuildConfigError(
      `${logicalId}.CodeUri ${codeUri} holds a package.json: sam build would copy it and npm install there; point CodeUri at the function's own folder`,
    );
  }
  const entryPoints = stringList(props.EntryPoints, `${at}.EntryPoints`);
  if (entryPoints.length !== 1) throw new BuildConfigError(`${at}.EntryPoints must name exactly one file`);
  const [entry] = entryPoints as [string];

  const outExtension =
    props.OutExtension === undefined ? {} : keyValues(props.OutExtension, `${at}.OutExtension`);
  const options: BuildOptions = {
    absWorkingDir: workingDir,
    entryPoints,
    bundle: true,
    platform: 'node',
    outdir: resolve(root, DIST_DIR, logicalId),
    target: typeof props.Target === 'string' ? props.Target : 'es2020',
    format: props.Format === undefined ? 'cjs' : (props.Format as BuildOptions['format']),
    minify: props.Minify === undefined ? true : props.Minify === true,
    sourcemap: props.Sourcemap === true,
    outExtension,
    logLevel: 'warning',
  };
  if (props.SourcesContent !== undefined) options.sourcesContent = String(props.SourcesContent) === 'true';
  if (typeof props.MainFields === 'string') options.mainFields = props.MainFields.split(',');
  if (props.External !== undefined) options.external = stringList(props.External, `${at}.External`);
  if (props.Loader !== undefined) {
    options.loader = keyValues(props.Loader, `${at}.Loader`) as BuildOptions['loader'];
  }
  if (props.Banner !== undefined) options.banner = keyValues(props.Banner, `${at}.Banner`);

  // One entry point is written as <outdir>/<basename>; SAM rewrites Handler to that flat path.
  const handler = typeof properties.Handler === 'string' ? properties.Handler : '';
  const handlerModule = handler.slice(0, handler.lastIndexOf('.'));
  if (!handlerModule) throw new BuildConfigError(`${logicalId}.Handler must be <module>.<export>`);
  const entryStem = posix.basename(entry).replace(/\.[cm]?[jt]s$/, '');
  if (posix.basename(handlerModule) !== entryStem) {
    throw new BuildConfigError(
      `${logicalId}: Handler module ${handlerModule} is not the bundle of ${entry}; Lambda would not find it`,
    );
  }
  const handlerFile = join(options.outdir as string, `${entryStem}${outExtension['.js'] ?? '.js'}`);
  return { logicalId, options, handlerFile };
}

/** Every esbuild-built function in the template. */
export function functionBundles(template: CfnTemplate, root: string): FunctionBundle[] {
  return resourcesOfType(template, 'AWS::Serverless::Function')
    .filter(([, resource]) => resource.Metadata?.BuildMethod === 'esbuild')
    .map(([logicalId, resource]) =>
      bundleFor(logicalId, resource.Properties ?? {}, resource.Metadata ?? {}, root),
    );
}

export interface BundleSize {
  logicalId: string;
  file: string;
  bytes: number;
  gzipBytes: number;
}

export async function buildAll(root: string): Promise<BundleSize[]> {
  const bundles = functionBundles(loadTemplate(join(root, 'template.yaml')), root);
  const sizes: BundleSize[] = [];
  for (const bundle of bundles) {
    rmSync(bundle.options.outdir as string, { recursive: true, force: true });
    await build(bundle.options);
    if (!existsSync(bundle.handlerFile)) {
      throw new BuildConfigError(`${bundle.logicalId}: esbuild did not write ${bundle.handlerFile}`);
    }
    sizes.push({
      logicalId: bundle.logicalId,
      file: join(DIST_DIR, bundle.logicalId, basename(bundle.handlerFile)),
      bytes: statSync(bundle.handlerFile).size,
      gzipBytes: gzipSync(readFileSync(bundle.handlerFile)).length,
    });
  }
  return sizes;
}

export function formatSizes(sizes: BundleSize[]): string {
  const n = (bytes: number) => bytes.toLocaleString('en-US');
  const rows = sizes.map((size) => [size.file, n(size.bytes), n(size.gzipBytes)]);
  const total = sizes.reduce((sum, size) => sum + size.bytes, 0);
  const totalGzip = sizes.reduce((sum, size) => sum + size.gzipBytes, 0);
  const table = [['bundle', 'bytes', 'gzip bytes'], ...rows, ['total', n(total), n(totalGzip)]];
  const widths = [0, 1, 2].map((column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  return table
    .map(([file = '', bytes = '', gzip = '']) =>
      [file.padEnd(widths[0] ?? 0), bytes.padStart(widths[1] ?? 0), gzip.padStart(widths[2] ?? 0)].join('  '),
    )
    .join('\n');
}

async function main(): Promise<number> {
  const root = resolve(dirname(import.meta.filename), '..');
  try {
    console.log(formatSizes(await buildAll(root)));
    return 0;
  } catch (error) {
    // esbuild has already printed its own diagnostics for a failed bundle.
    console.error(`build: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exitCode = await main();

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { functionBundles } from '../scripts/build.ts';
import { loadTemplate } from '../scripts/cfn-yaml.ts';
import { median, round } from './stats.ts';
import { buildUnbundledTree } from './unbundled.ts';

/**
 * Cold start per function: the bundle `npm run build` makes (settings from template.yaml), its size, and the
 * time `import()` of it takes in a fresh `node` (bench/import-probe.ts, so Node's own start-up is excluded),
 * against the same handler transpiled to JavaScript and left unbundled (bench/unbundled.ts: every file of ours
 * it reaches, one .js per .ts, with node_modules as they are). The primary ratio is the bundle with source maps
 * on (template.yaml's NODE_OPTIONS) over that baseline. Samples of the variants are interleaved, so a busy
 * moment on the machine hits all of them alike.
 */

const PROBE = fileURLToPath(new URL('./import-probe.ts', import.meta.url));

/** What Lambda's environment holds (template.yaml Globals), so nothing fails for a missing variable. */
const LAMBDA_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  POWERTOOLS_SERVICE_NAME: 'crossdeploy',
  POWERTOOLS_LOG_LEVEL: 'ERROR',
  TABLE_NAME: 'crossdeploy-bench',
  ARTIFACTS_BUCKET: 'crossdeploy-bench-artifacts',
  STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:crossdeploy-deploy',
  BUILD_PROJECT: 'crossdeploy-build',
  DEPLOY_PROJECT: 'crossdeploy-deploy',
  BUILD_LOG_GROUP: '/aws/codebuild/crossdeploy-build',
  DEPLOY_LOG_GROUP: '/aws/codebuild/crossdeploy-deploy',
  QUEUED_TIMEOUT_MINUTES: '10',
  BUILD_TIMEOUT_MINUTES: '60',
  DEPLOY_TIMEOUT_MINUTES: '180',
};

export const BUNDLE_LIMIT_BYTES = 400 * 1024;

export interface ColdStartRow {
  function: string;
  bytes: number;
  gzipBytes: number;
  /** Median ms of import() of the bundle. */
  bundleMs: number;
  /** The same with --enable-source-maps, as template.yaml's NODE_OPTIONS runs it in Lambda. */
  bundleSourceMapsMs: number;
  /** Median ms of import() of the handler transpiled to JavaScript, unbundled, with node_modules. */
  unbundledJsMs: number;
  /** bundleSourceMapsMs / unbundledJsMs: what a user's function pays against not bundling at all. */
  ratio: number;
  samples: number;
  /** Bytes of the bundle by origin (esbuild's metafile), largest first. */
  composition: Record<string, number>;
  errors: string[];
}

type Kind = 'bundle' | 'maps' | 'unbundled';

type Outputs = Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;

/** The SDK's packages count as one: they come as one dependency tree. */
function origin(path: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (!match) return 'crossdeploy';
  const name = match[1] as string;
  return /^@(aws-sdk|smithy|aws-crypto)\//.test(name) || name === 'fast-xml-parser' || name === 'tslib'
    ? 'AWS SDK'
    : name;
}

function composition(outputs: Outputs): Record<string, number> {
  const bytes: Record<string, number> = {};
  for (const [file, output] of Object.entries(outputs)) {
    if (file.endsWith('.map')) continue;
    for (const [path, input] of Object.entries(output.inputs)) {
      const key = origin(path);
      bytes[key] = (bytes[key] ?? 0) + input.bytesInOutput;
    }
  }
  return Object.fromEntries(Object.entries(bytes).sort(([, a], [, b]) => b - a));
}

function probe(target: string, nodeOptions: string): Promise<{ ms?: number; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PROBE, target], {
      env: { ...LAMBDA_ENV, NODE_OPTIONS: nodeOptions },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.once('close', () => {
      try {
        resolve(JSON.parse(out) as { ms?: number; error?: string });
      } catch {
        resolve({ error: err.trim().split('\n')[0] ?? 'no output' });
      }
    });
  });
}

export async function measureColdStart(root: string, samples: number): Promise<ColdStartRow[]> {
  // Bundled exactly as `npm run build` does (the same esbuild options from template.yaml), into a directory
  // of our own: dist/ may be rebuilt by someone else while the samples run.
  const out = mkdtempSync(join(tmpdir(), 'crossdeploy-bench-dist-'));
  const bundles = functionBundles(loadTemplate(join(root, 'template.yaml')), root);
  const built = [];
  for (const bundle of bundles) {
    const outdir = join(out, bundle.logicalId);
    const { metafile } = await build({ ...bundle.options, outdir, metafile: true });
    built.push({ ...bundle, metafile, file: join(outdir, basename(bundle.handlerFile)) });
  }
  // The baseline reaches the same files of ours: the metafiles just made say which.
  const tree = await buildUnbundledTree(root, join(out, 'unbundled'), built);
  const variants = [];
  for (const { logicalId, file, metafile } of built) {
    variants.push({
      logicalId,
      bundle: file,
      unbundled: tree.handlers[logicalId] as string,
      bytes: statSync(file).size,
      gzipBytes: gzipSync(readFileSync(file)).length,
      composition: composition(metafile?.outputs ?? {}),
      times: { bundle: [] as number[], maps: [] as number[], unbundled: [] as number[] },
      errors: new Set<string>(),
    });
  }
  // The build has just written the bundles and read the sources: they are in the page cache already.
  for (let sample = 1; sample <= samples; sample++) {
    for (const v of variants) {
      const runs: [Kind, string, string][] = [
        ['maps', v.bundle, '--enable-source-maps'],
        // Every other round only: a secondary column, and the bench must stay within minutes.
        ...(sample % 2 === 1 ? [['bundle', v.bundle, ''] as [Kind, string, string]] : []),
        ['unbundled', v.unbundled, ''],
      ];
      for (const [kind, target, options] of runs) {
        const result = await probe(target, options);
        if (result.error) v.errors.add(`${kind}: ${result.error}`);
        else if (result.ms !== undefined) v.times[kind].push(result.ms);
      }
    }
  }
  rmSync(out, { recursive: true, force: true });
  return variants.map((v) => {
    const mapsMs = median(v.times.maps);
    const unbundledJsMs = median(v.times.unbundled);
    return {
      function: v.logicalId,
      bytes: v.bytes,
      gzipBytes: v.gzipBytes,
      bundleMs: round(median(v.times.bundle)),
      bundleSourceMapsMs: round(mapsMs),
      unbundledJsMs: round(unbundledJsMs),
      ratio: round(mapsMs / unbundledJsMs, 2),
      samples: v.times.maps.length,
      composition: v.composition,
      errors: [...v.errors],
    };
  });
}

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUnbundledTree, toJsSpecifier, type UnbundledTree } from '../../bench/unbundled.ts';
import { functionBundles } from '../../scripts/build.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

// The cold-start bench divides by this baseline: if it loaded .ts (type stripping) or a bundle, the ratio
// would measure something no deployed function runs.
const root = resolve(import.meta.dirname, '../..');
const bundles = functionBundles(loadTemplate(join(root, 'template.yaml')), root);

/** Imports the module in a fresh node and reports every module URL that was loaded (Node's own hooks). */
const PROBE = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
const mod = await import(process.argv[1]);
process.stdout.write(JSON.stringify({ handler: typeof mod.handler, loaded }));
`;

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));

describe('the unbundled-JS cold-start baseline', () => {
  let dir: string;
  let tree: UnbundledTree;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crossdeploy-unbundled-test-'));
    tree = await buildUnbundledTree(root, join(dir, 'tree'), bundles);
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rewrites relative and #shared imports to .js and leaves packages alone', () => {
    expect(toJsSpecifier('./core.ts')).toBe('./core.js');
    expect(toJsSpecifier('#shared/aws/runtime.ts')).toBe('#shared/aws/runtime.js');
    expect(toJsSpecifier('@aws-sdk/client-sfn')).toBe('@aws-sdk/client-sfn');
    expect(toJsSpecifier('node:fs')).toBe('node:fs');
  });

  it('holds JavaScript only, with no import of a .ts file left', () => {
    const files = filesUnder(join(tree.dir, 'functions'));
    expect(files.length).toBeGreaterThan(bundles.length);
    expect(files.filter((file) => !file.endsWith('.js'))).toEqual([]);
    for (const file of files) expect(readFileSync(file, 'utf8')).not.toMatch(/from\s*["'][^"']+\.ts["']/);
  });

  it.each(bundles.map((bundle) => [bundle.logicalId] as const))(
    '%s: the transpiled handler imports in a fresh node, exports a function, and loads no .ts and no bundle',
    (logicalId) => {
      const handlerFile = tree.handlers[logicalId] as string;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE, handlerFile], {
        env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1' },
        encoding: 'utf8',
      });
      const { handler, loaded } = JSON.parse(out) as { handler: string; loaded: string[] };
      expect(handler).toBe('function');
      const files = loaded.filter((url) => url.startsWith('file:'));
      // Our code comes from the tree, transpiled; packages from the repository's own node_modules.
      expect(files.filter((url) => url.endsWith('.ts'))).toEqual([]);
      const ours = files.filter((url) => !url.includes('/node_modules/'));
      expect(ours.length).toBeGreaterThan(1);
      expect(ours.filter((url) => !url.startsWith(`file://${tree.dir}/`))).toEqual([]);
      expect(files.some((url) => url.includes('/node_modules/'))).toBe(true);
    },
    30_000,
  );

  it('reaches the same files when it is given the metafile of a build already made (the bench builds once)', async () => {
    const picked = bundles.filter((b) => ['ReleaseLockFunction', 'ApprovalFunction'].includes(b.logicalId));
    expect(picked).toHaveLength(2);
    const withMetafiles = [];
    for (const bundle of picked) {
      const { metafile } = await build({
        ...bundle.options,
        outdir: join(dir, 'built', bundle.logicalId),
        metafile: true,
      });
      withMetafiles.push({ ...bundle, metafile });
    }
    const given = await buildUnbundledTree(root, join(dir, 'given'), withMetafiles);
    const found = await buildUnbundledTree(root, join(dir, 'found'), picked);
    const files = (t: UnbundledTree) =>
      filesUnder(join(t.dir, 'functions'))
        .map((f) => relative(t.dir, f))
        .sort();
    expect(files(given).length).toBeGreaterThan(2);
    expect(files(given)).toEqual(files(found));
  }, 60_000);
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { functionBundles } from '../../scripts/build.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

// An ESM `import` of node:http reads every export of it, and one of them loads undici (Node's fetch, ~20 ms
// of a cold start) that no handler uses at init. A CommonJS bundle reaches builtins through require, which
// does not. Checked by what Node loaded (process.moduleLoadList), never by time.
const root = resolve(import.meta.dirname, '../..');
const bundles = functionBundles(loadTemplate(join(root, 'template.yaml')), root);
const dir = mkdtempSync(join(tmpdir(), 'crossdeploy-bundle-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PROBE = `
const mod = await import(process.argv[1]);
process.stdout.write(JSON.stringify({ handler: typeof mod.handler, loaded: process.moduleLoadList }));
`;

describe('importing a Lambda bundle', () => {
  it.each(bundles.map((bundle) => [bundle.logicalId, bundle] as const))(
    '%s exports its handler and does not load undici',
    async (logicalId, bundle) => {
      const outdir = join(dir, logicalId);
      await build({ ...bundle.options, outdir });
      const out = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          PROBE,
          bundle.handlerFile.replace(bundle.options.outdir as string, outdir),
        ],
        { env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1' }, encoding: 'utf8' },
      );
      const { handler, loaded } = JSON.parse(out) as { handler: string; loaded: string[] };
      expect(handler).toBe('function');
      expect(loaded.filter((name) => name.includes('undici'))).toEqual([]);
    },
    30_000,
  );
});

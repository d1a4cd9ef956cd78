import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { functionBundles } from '../../scripts/build.ts';
import { loadTemplate, resourcesOfType } from '../../scripts/cfn-yaml.ts';

// Lambda runs the bundles with template.yaml's NODE_OPTIONS; the map is read at every cold start, so it
// carries positions only (no copy of the sources), yet an error in our code must still name the .ts line.
const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const bundles = functionBundles(template, root);
const globals = template.Globals as { Function: { Environment: { Variables: Record<string, unknown> } } };
const nodeOptions = String(globals.Function.Environment.Variables.NODE_OPTIONS);
const dir = mkdtempSync(join(tmpdir(), 'crossdeploy-source-maps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONFIG_THROW_LINE =
  readFileSync(join(root, 'functions/shared/config.ts'), 'utf8')
    .split('\n')
    .findIndex((line) => line.includes('throw new ConfigError(`invalid configuration')) + 1;

describe('source maps of the Lambda bundles', () => {
  it('are enabled by NODE_OPTIONS for every function', () => {
    expect(nodeOptions.split(/\s+/)).toContain('--enable-source-maps');
    expect(resourcesOfType(template, 'AWS::Serverless::Function').length).toBe(bundles.length);
  });

  it.each(bundles.map((bundle) => [bundle.logicalId, bundle] as const))(
    '%s ships a map without the sources in it',
    async (_logicalId, { options }) => {
      const { outputFiles } = await build({ ...options, write: false, outdir: join(dir, 'x') });
      const map = outputFiles.find((file) => file.path.endsWith('.map'));
      expect(map).toBeDefined();
      const parsed = JSON.parse(map?.text ?? '{}') as { sources: string[]; sourcesContent?: unknown[] };
      expect(parsed.sources.some((source) => source.endsWith('.ts'))).toBe(true);
      expect((parsed.sourcesContent ?? []).filter((content) => content != null)).toEqual([]);
    },
  );

  it('turn an error thrown in our code into a stack trace that names the .ts file and line', async () => {
    expect(CONFIG_THROW_LINE).toBeGreaterThan(0);
    const [bundle] = bundles;
    if (!bundle) throw new Error('no bundle in template.yaml');
    const outdir = join(dir, 'throws');
    // The bundle options of a real function, with an entry that reaches functions/shared/config.ts the way a
    // handler does and makes it throw (TABLE_NAME is unset in the child).
    await build({
      ...bundle.options,
      entryPoints: undefined,
      stdin: {
        contents:
          "import { envShapes, readEnv } from '#shared/config.ts';\nexport const run = () => readEnv(envShapes.table);\n",
        resolveDir: root,
        sourcefile: 'entry.ts',
        loader: 'ts',
      },
      outdir,
    });
    const script =
      'const { run } = await import(process.argv[1]); try { run(); } catch (e) { process.stdout.write(e.stack); }';
    const stack = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        script,
        join(outdir, `stdin${bundle.options.outExtension?.['.js'] ?? '.js'}`),
      ],
      {
        env: { PATH: process.env.PATH, NODE_OPTIONS: nodeOptions },
        encoding: 'utf8',
      },
    );
    expect(stack).toContain('invalid configuration');
    expect(stack).toMatch(new RegExp(`functions/shared/config\\.ts:${CONFIG_THROW_LINE}:\\d+`));
  });
});

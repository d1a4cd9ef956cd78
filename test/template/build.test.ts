import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { BuildConfigError, bundleFor, formatSizes, functionBundles } from '../../scripts/build.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));

const metadata = (properties: Record<string, unknown>) => ({
  BuildMethod: 'esbuild',
  BuildProperties: properties,
});
const fn = { CodeUri: 'functions/api/', Handler: 'handler.handler' };

describe('npm run build', () => {
  const bundles = functionBundles(template, root);

  it('bundles every function of the template', () => {
    const functions = Object.entries(template.Resources)
      .filter(([, resource]) => resource.Type === 'AWS::Serverless::Function')
      .map(([id]) => id);
    expect(bundles.map((bundle) => bundle.logicalId)).toEqual(functions);
  });

  it.each(functionBundles(template, root).map((bundle) => [bundle.logicalId, bundle] as const))(
    '%s uses the settings of its Metadata',
    (logicalId, { options, handlerFile }) => {
      const properties = template.Resources[logicalId]?.Metadata?.BuildProperties as Record<string, unknown>;
      expect(options).toMatchObject({
        entryPoints: properties.EntryPoints,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node24',
        minify: true,
        sourcemap: true,
        mainFields: ['module', 'main'],
        outExtension: { '.js': '.cjs' },
        outdir: join(root, 'dist', logicalId),
      });
      expect(options.banner).toBeUndefined();
      expect(handlerFile).toBe(join(root, 'dist', logicalId, 'handler.cjs'));
    },
  );
});

describe('bundle externals', () => {
  // Left out of every bundle: the default credential chain imports them only after fromEnv, which always
  // succeeds in Lambda. A static import of one would crash the function at its first cold start.
  it.each(functionBundles(template, root).map((bundle) => [bundle.logicalId, bundle] as const))(
    '%s loads with its externals unresolvable, and imports them only lazily',
    async (_logicalId, { options }) => {
      expect(options.external).toEqual(
        expect.arrayContaining(['@aws-sdk/credential-provider-ini', '@aws-sdk/credential-provider-sso']),
      );
      const result = await build({ ...options, write: false, sourcemap: false, logLevel: 'silent' });
      const code = result.outputFiles.find((file) => file.path.endsWith('.cjs'))?.text ?? '';
      expect(code).not.toBe('');
      for (const external of options.external ?? []) {
        expect(code).not.toContain(`from"${external}"`);
        expect(code).not.toMatch(new RegExp(`import"${external}"`));
      }
      // Outside the project, so node_modules cannot supply what the bundle left out.
      const dir = mkdtempSync(join(tmpdir(), 'crossdeploy-bundle-'));
      try {
        writeFileSync(join(dir, 'handler.cjs'), code);
        const loaded = execFileSync(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const m = await import(${JSON.stringify(join(dir, 'handler.cjs'))}); console.log(typeof m.handler);`,
          ],
          { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, POWERTOOLS_LOG_LEVEL: 'ERROR' } },
        );
        expect(loaded.trim()).toBe('function');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('bundleFor', () => {
  it('applies sam build defaults where the Metadata is silent', () => {
    const { options, handlerFile } = bundleFor('F', fn, metadata({ EntryPoints: ['handler.ts'] }), root);
    expect(options).toMatchObject({ format: 'cjs', target: 'es2020', minify: true, sourcemap: false });
    expect(handlerFile).toBe(join(root, 'dist', 'F', 'handler.js'));
  });

  it('reads key=value lists the way sam build passes them', () => {
    const { options } = bundleFor(
      'F',
      fn,
      metadata({
        EntryPoints: ['handler.ts'],
        Loader: ['.yaml=text'],
        External: ['@aws-sdk/*'],
        Banner: ['js=const a = "x=y";'],
      }),
      root,
    );
    expect(options).toMatchObject({
      loader: { '.yaml': 'text' },
      external: ['@aws-sdk/*'],
      banner: { js: 'const a = "x=y";' },
    });
  });

  it('refuses a property sam build would not apply', () => {
    expect(() =>
      bundleFor('F', fn, metadata({ EntryPoints: ['handler.ts'], KeepNames: true }), root),
    ).toThrow(BuildConfigError);
  });

  it('refuses a Handler that is not the bundle of the entry point', () => {
    expect(() =>
      bundleFor(
        'F',
        { ...fn, Handler: 'functions/api/index.handler' },
        metadata({ EntryPoints: ['handler.ts'] }),
        root,
      ),
    ).toThrow(/would not find it/);
  });

  it('refuses zero or several entry points', () => {
    expect(() => bundleFor('F', fn, metadata({ EntryPoints: [] }), root)).toThrow(/exactly one/);
  });
});

describe('CodeUri', () => {
  it('refuses a CodeUri holding a package.json (the repository root): sam build would copy it and npm install', () => {
    expect(() =>
      bundleFor(
        'F',
        { CodeUri: './', Handler: 'functions/api/handler.handler' },
        metadata({ EntryPoints: ['functions/api/handler.ts'] }),
        root,
      ),
    ).toThrow(/holds a package\.json/);
  });
});

describe('formatSizes', () => {
  it('prints one row per bundle and a total', () => {
    const table = formatSizes([
      { logicalId: 'A', file: 'dist/A/handler.mjs', bytes: 341_234, gzipBytes: 106_001 },
      { logicalId: 'B', file: 'dist/B/handler.mjs', bytes: 1_024, gzipBytes: 512 },
    ]);
    expect(table.split('\n')).toEqual([
      'bundle                bytes  gzip bytes',
      'dist/A/handler.mjs  341,234     106,001',
      'dist/B/handler.mjs    1,024         512',
      'total               342,258     106,513',
    ]);
  });
});

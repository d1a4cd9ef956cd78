/**
 * The real `node local/main.ts` at start: a registry with a `runner: local` environment on a machine without
 * SAM CLI exits 2 naming the tool and the environment; the sample registry (every environment
 * `runner: simulate`) starts without SAM CLI. PATH is a directory built here, so no tool is uninstalled.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { SAMPLE_REGISTRY } from '#local/config.ts';
import { ROOT } from './support/local-server.ts';

const root = mkdtempSync(join(tmpdir(), 'crossdeploy-preflight-e2e-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A PATH with git, python3 (with PyYAML) and an `aws`, and no `sam`. */
let bin: string | undefined;
function pathWithoutSam(): string {
  if (bin) return bin;
  bin = join(root, 'bin');
  mkdirSync(bin);
  const python = execFileSync('python3', ['-c', 'import sys, yaml; print(sys.executable)'], {
    encoding: 'utf8',
  }).trim();
  symlinkSync(python, join(bin, 'python3'));
  symlinkSync(execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim(), join(bin, 'git'));
  writeFileSync(join(bin, 'aws'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(bin, 'aws'), 0o755);
  return bin;
}

/** Runs the server until it prints its banner (then stops it) or exits on its own. */
function start(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string; listened: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['local/main.ts'], {
      cwd: ROOT,
      env: {
        PORT: '0',
        CROSSDEPLOY_SCHEDULES: 'off',
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        LANG: 'C.UTF-8',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let listened = false;
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!listened && /listening on http/.test(output)) {
        listened = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => resolve({ code, output, listened }));
  });
}

describe('local mode checks its tools at start', () => {
  it('exits 2 naming sam and the runner: local environment when SAM CLI is not on PATH', async () => {
    const sample = parseYaml(readFileSync(SAMPLE_REGISTRY, 'utf8')) as {
      applications: { 'hello-world': { environments: Record<string, { runner?: string }> } };
    };
    sample.applications['hello-world'].environments.staging!.runner = 'local';
    const registryPath = join(root, 'registry.yaml');
    // The sample's localPath is relative to its own file.
    writeFileSync(
      registryPath,
      JSON.stringify(sample).replace(
        '"../examples/hello-world"',
        JSON.stringify(join(ROOT, 'examples/hello-world')),
      ),
    );
    const result = await start({
      PATH: pathWithoutSam(),
      HOME: root,
      CROSSDEPLOY_REGISTRY: registryPath,
      CROSSDEPLOY_DATA_DIR: join(root, 'data-local'),
    });
    expect(result.listened, result.output).toBe(false);
    expect(result.code, result.output).toBe(2);
    expect(result.output).toContain('hello-world/staging (runner: local)');
    expect(result.output).toContain('sam: SAM CLI');
    expect(result.output).not.toContain('hello-world/prod');
  });

  it('starts with the sample registry (every environment runner: simulate) without SAM CLI', async () => {
    const registry = readFileSync(SAMPLE_REGISTRY, 'utf8');
    expect(registry.match(/^\s+runner: simulate$/gm)?.length).toBe(2);
    const result = await start({
      PATH: pathWithoutSam(),
      HOME: root,
      CROSSDEPLOY_DATA_DIR: join(root, 'data-sample'),
    });
    expect(result.listened, result.output).toBe(true);
  });
});

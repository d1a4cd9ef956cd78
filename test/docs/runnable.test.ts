import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fixture, ROOT, type ServerProcess, startServer } from '#test/e2e/support/local-server.ts';

/**
 * Docs that run: every fenced block marked ```sh runnable (or ```bash runnable) in README.md and docs/*.md
 * runs, as written, in bash (`set -euo pipefail`) from the repository root against local mode with the
 * sample registry (registry/sample.yaml), in document order: README first, then docs/ by name. A block
 * fails the test when any command in it fails, so an example cannot name an environment the sample registry
 * lacks or an option the CLI refuses and stay in the docs.
 */

const MARKED = /^```(?:sh|bash) runnable\n([\s\S]*?)^```$/gm;

interface Block {
  name: string;
  script: string;
}

function runnableBlocks(): Block[] {
  const files = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((file) => file.endsWith('.md'))
      .sort()
      .map((file) => `docs/${file}`),
  ];
  return files.flatMap((file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    return [...text.matchAll(MARKED)].map((match) => {
      const line = text.slice(0, match.index).split('\n').length;
      return { name: `${file}:${line}`, script: match[1] ?? '' };
    });
  });
}

const blocks = runnableBlocks();
let server: ServerProcess;
const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-docs-'));

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dataDir,
    LANG: 'C.UTF-8',
  };
  server = await startServer({ env } as Fixture, dataDir, { CROSSDEPLOY_SCHEDULES: 'off' });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function runBlock(script: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], {
      cwd: ROOT,
      env: {
        PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: process.env.HOME ?? dataDir,
        LANG: 'C.UTF-8',
        TZ: 'UTC',
        CROSSDEPLOY_URL: server.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('runnable examples in README.md and docs/*.md', () => {
  it('has runnable examples to run (README quickstart and docs/cli.md at least)', () => {
    const names = blocks.map((block) => block.name.split(':')[0]);
    expect(names).toContain('README.md');
    expect(names).toContain('docs/cli.md');
  });

  it.each(blocks.map((block) => [block.name, block] as const))(
    '%s runs against local mode with the sample registry',
    async (_name, block) => {
      const { code, output } = await runBlock(block.script);
      expect({ code, output }).toMatchObject({ code: 0 });
    },
    120_000,
  );
});

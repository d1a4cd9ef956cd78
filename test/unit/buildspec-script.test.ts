import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { driverFor } from '#local/buildspec-script.ts';

/**
 * The local driver runs a buildspec with CodeBuild's semantics: each command's own exit status decides,
 * `set -e` inside a command (or inside a subshell of it) is honoured, and exports, plain variables and `cd`
 * carry over to the next command. Here it runs small buildspecs in bash and the log and exit status show it.
 */

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function runDriver(buildspec: string, env: Record<string, string> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-driver-'));
  roots.push(root);
  const meta = join(root, 'meta');
  const work = join(root, 'work');
  mkdirSync(meta);
  mkdirSync(join(work, 'sub'), { recursive: true });
  const driver = driverFor(buildspec);
  for (const [name, content] of Object.entries(driver.files)) writeFileSync(join(meta, name), content);
  const exportedFile = join(meta, 'exported');
  const result = spawnSync('bash', [join(meta, 'driver.sh'), meta, exportedFile], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, ...env },
    encoding: 'utf8',
  });
  let exported: Record<string, string> = {};
  try {
    exported = Object.fromEntries(
      readFileSync(exportedFile, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
  } catch {
    // no file: nothing exported
  }
  return { code: result.status, output: result.stdout + result.stderr, exported, work, meta };
}

const spec = (phases: string, exported: string[] = []) =>
  `version: 0.2\nenv:\n  shell: bash\n  exported-variables: [${exported.join(', ')}]\nphases:\n${phases}`;

describe('the local buildspec driver: a failing line fails the phase as in CodeBuild', () => {
  it('fails the phase when a middle line of a multi-line command fails under set -e', () => {
    const result = runDriver(
      spec(`  build:
    commands:
      - |
        set -e
        echo first line
        false
        echo "after the failing line"
      - echo "next command"
`),
    );
    expect(result.output).toContain('first line');
    expect(result.output).not.toContain('after the failing line');
    expect(result.output).not.toContain('next command');
    expect(result.output).toContain('Phase complete: BUILD State: FAILED');
    expect(result.code).toBe(1);
  });

  it('fails the phase when a line inside a ( set -euo pipefail ... ) block fails', () => {
    const result = runDriver(
      spec(`  pre_build:
    on-failure: ABORT
    commands:
      - |
        (
          set -euo pipefail
          echo "refusing the build output" >&2
          false
          echo "deployed anyway"
        )
  build:
    commands:
      - echo "the build phase ran"
`),
    );
    expect(result.output).not.toContain('deployed anyway');
    expect(result.output).not.toContain('the build phase ran');
    expect(result.output).toContain('Phase complete: PRE_BUILD State: FAILED');
    expect(result.code).toBe(1);
  });

  it('fails the phase on a missing command inside a set -e block (sam: command not found)', () => {
    const result = runDriver(
      spec(`  build:
    commands:
      - |
        (
          set -euo pipefail
          crossdeploy-no-such-tool build
          echo "stored the build output"
        )
`),
    );
    expect(result.output).toMatch(/crossdeploy-no-such-tool: command not found/);
    expect(result.output).not.toContain('stored the build output');
    expect(result.code).toBe(1);
  });

  it('fails the phase on a pipeline whose first stage fails under pipefail', () => {
    const result = runDriver(
      spec(`  build:
    commands:
      - |
        (
          set -euo pipefail
          false | cat
          echo "after the pipeline"
        )
`),
    );
    expect(result.output).not.toContain('after the pipeline');
    expect(result.code).toBe(1);
  });

  it('keeps a masked failure masked without set -e, as CodeBuild does (only the command status counts)', () => {
    const result = runDriver(
      spec(`  build:
    commands:
      - |
        false
        echo "the last line decides"
`),
    );
    expect(result.output).toContain('the last line decides');
    expect(result.output).toContain('Phase complete: BUILD State: SUCCEEDED');
    expect(result.code).toBe(0);
  });

  it('carries exports, plain variables and cd from one command to the next', () => {
    const result = runDriver(
      spec(
        `  build:
    commands:
      - export EXPORTED="with spaces and 'quotes'"
      - PLAIN=plain-value
      - cd sub
      - echo "pwd=$(basename "$PWD") exported=$EXPORTED plain=$PLAIN"
      - OUT="$PLAIN-out" && export OUT
`,
        ['OUT', 'EXPORTED'],
      ),
    );
    expect(result.output).toContain(`pwd=sub exported=with spaces and 'quotes' plain=plain-value`);
    expect(result.exported).toEqual({ OUT: 'plain-value-out', EXPORTED: "with spaces and 'quotes'" });
    expect(result.code).toBe(0);
    // The saved state held every variable of the job: it does not outlive the driver.
    expect(readdirSync(result.meta)).not.toContain('state.sh');
  });

  it('does not bring back a variable a command unset', () => {
    const result = runDriver(
      spec(`  build:
    commands:
      - unset GONE
      - echo "gone=\${GONE-unset}"
`),
      { GONE: 'still here' },
    );
    expect(result.output).toContain('gone=unset');
  });

  it('runs finally and post_build after a command that exits the shell, and still writes exported variables', () => {
    const result = runDriver(
      spec(
        `  build:
    commands:
      - export SEEN=yes
      - |
        set -e
        false
    finally:
      - echo "finally ran"
  post_build:
    commands:
      - echo "post_build ran, succeeding=$CODEBUILD_BUILD_SUCCEEDING"
`,
        ['SEEN'],
      ),
    );
    expect(result.output).toContain('finally ran');
    expect(result.output).toContain('post_build ran, succeeding=0');
    expect(result.exported).toEqual({ SEEN: 'yes' });
    expect(result.code).toBe(1);
  });
});

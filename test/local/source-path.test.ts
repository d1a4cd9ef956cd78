import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeLocalJobRoots, runLocalJob } from '#test/support/local-job.ts';
import { createSandbox, removeSandboxes } from '#test/support/run-buildspec.ts';

/**
 * Local mode builds the commit a ref names from the git repository holding `source.localPath`. The common
 * case is an application at the root of its own repository: the path is the repository's top directory.
 */

afterAll(() => {
  removeSandboxes();
  removeLocalJobRoots();
});

const TEMPLATE = [
  'Transform: AWS::Serverless-2016-10-31',
  'Resources:',
  '  Hello:',
  '    Type: AWS::Serverless::Function',
  '    Properties:',
  '      CodeUri: Hello',
  '      Handler: app.handler',
  '      Runtime: nodejs24.x',
  '',
].join('\n');

/** The fixture registry's template path is app/template.yaml, relative to the source root. */
function writeApp(dir: string) {
  mkdirSync(join(dir, 'app', 'Hello'), { recursive: true });
  writeFileSync(join(dir, 'app', 'template.yaml'), TEMPLATE);
  writeFileSync(join(dir, 'app', 'Hello', 'app.js'), 'export const handler = async () => "hello";\n');
}

describe('local build source path', () => {
  it('builds an application whose source.localPath is the root of its repository', async () => {
    const { info, output } = await runLocalJob({
      sandbox: createSandbox(),
      job: 'build',
      scenario: {},
      writeSource: writeApp,
    });
    expect(output).not.toMatch(/is not in commit/);
    expect(info.status).toBe('SUCCEEDED');
    expect(info.resolvedCommit).toMatch(/^[0-9a-f]{40}$/);
    // No empty "()" where a subdirectory would be named.
    expect(output).toMatch(/checking out release\/1\.2 = [0-9a-f]{40} of \S+repo$/m);
  });

  it('builds from the repository root given as "." next to a registry file at that root', async () => {
    const { info } = await runLocalJob({
      sandbox: createSandbox(),
      job: 'build',
      scenario: {},
      writeSource: writeApp,
      localPath: () => '.',
      registryDir: (repo) => repo,
    });
    expect(info.status).toBe('SUCCEEDED');
  });

  it('builds from the repository root given with a trailing slash', async () => {
    const { info } = await runLocalJob({
      sandbox: createSandbox(),
      job: 'build',
      scenario: {},
      writeSource: writeApp,
      localPath: (repo) => `${repo}/`,
    });
    expect(info.status).toBe('SUCCEEDED');
  });

  it('builds from a committed subdirectory whose name has a space and non-ASCII letters', async () => {
    const { info, output } = await runLocalJob({
      sandbox: createSandbox(),
      job: 'build',
      scenario: {},
      writeSource: (repo) => writeApp(join(repo, 'svc ü')),
      localPath: (repo) => join(repo, 'svc ü'),
    });
    expect(info.status).toBe('SUCCEEDED');
    expect(output).toContain('(svc ü/)');
  });

  it('refuses a subdirectory that is not committed, naming it', async () => {
    const { info, output } = await runLocalJob({
      sandbox: createSandbox(),
      job: 'build',
      scenario: {},
      writeSource: (repo) => {
        writeApp(repo);
        // Exists in the working copy only: ignored, so never committed.
        mkdirSync(join(repo, 'draft'));
        writeFileSync(join(repo, 'draft', 'x'), 'x');
        writeFileSync(join(repo, '.gitignore'), 'draft/\n');
      },
      localPath: (repo) => join(repo, 'draft'),
    });
    expect(info.status).toBe('FAILED');
    expect(output).toMatch(/draft\/ is not in commit [0-9a-f]{40} \(release\/1\.2\)/);
  });
});

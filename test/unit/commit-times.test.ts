import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GitCommitTimes } from '#local/commit-times.ts';
import { parseRegistry } from '#shared/registry/registry.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

function times(localPath: string) {
  const registry = parseRegistry({
    applications: {
      app: {
        source: { type: 'GITHUB', location: 'https://github.com/example-org/app.git', localPath },
        environments: {
          dev: {
            accountId: '111111111111',
            region: 'eu-west-1',
            deployRoleArn: 'arn:aws:iam::111111111111:role/crossdeploy/deploy',
            executionRoleArn: 'arn:aws:iam::111111111111:role/crossdeploy/cfn-exec',
            stackName: 'app-dev',
            artifactsBucket: 'artifacts-111111111111-eu-west-1',
            allowedRequesters: { local: ['*'] },
          },
        },
      },
    },
  });
  return new GitCommitTimes({ registry, registryPath: `${root}registry.yaml` });
}

describe('GitCommitTimes (local mode lead time)', () => {
  it("reads a commit's committer time from the application's repository", async () => {
    const head = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const expected = execFileSync('git', ['-C', root, 'show', '-s', '--format=%cI', head], {
      encoding: 'utf8',
    }).trim();
    const found = await times('examples/hello-world').lookup('app', [head]);
    expect(found.get(head)).toBe(new Date(expected).toISOString());
  });

  it('passes nothing but full object names to git, and leaves unknown commits out', async () => {
    const marker = `${root}node_modules/.commit-times-probe`;
    const found = await times('examples/hello-world').lookup('app', [
      `--output=${marker}`,
      'HEAD',
      'main; touch /tmp/x',
      'f'.repeat(40),
    ]);
    expect(found.size).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(await times('examples/hello-world').lookup('other-app', ['f'.repeat(40)])).toEqual(new Map());
  });
});

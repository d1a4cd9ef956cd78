import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { checkLocalSources, SAMPLE_REGISTRY } from '../../local/config.ts';

/** `node local/main.ts` refusing to start, as a user sees it: the exit status and the message. */

const MAIN = fileURLToPath(new URL('../../local/main.ts', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs the server until it exits, or until it prints its banner (then it is stopped: it started). */
function start(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; started: boolean }> {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let started = false;
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (!started && chunk.toString().includes('http://')) {
      started = true;
      child.kill('SIGTERM');
    }
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr, started })));
}

const registry = (localPath: string) => `applications:
  demo:
    source:
      type: GITHUB
      location: https://github.com/example-org/demo.git
      localPath: ${JSON.stringify(localPath)}
    environments:
      staging:
        accountId: "111111111111"
        region: us-east-1
        deployRoleArn: arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deploy
        executionRoleArn: arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-cfn-exec
        stackName: demo-staging
        artifactsBucket: crossdeploy-artifacts-111111111111-us-east-1
        capabilities: [CAPABILITY_IAM]
        allowedRequesters:
          local: ["*"]
        runner: simulate
`;

describe('local mode at start', () => {
  it('refuses a registry whose source.localPath does not exist, with exit status 2, naming the path', async () => {
    const root = mkdtempSync(join(tmpdir(), 'crossdeploy-start-'));
    dirs.push(root);
    writeFileSync(join(root, 'registry.yaml'), registry('../no-such-app'));
    const result = await start({
      CROSSDEPLOY_REGISTRY: join(root, 'registry.yaml'),
      CROSSDEPLOY_DATA_DIR: join(root, 'data'),
    });
    expect(result.started).toBe(false);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(join(root, '..', 'no-such-app'));
    expect(result.stderr).toContain('demo');
  });

  it('says the port is in use, and how to pick another, when something already listens there', async () => {
    const root = mkdtempSync(join(tmpdir(), 'crossdeploy-start-'));
    dirs.push(root);
    const other = createServer();
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const { port } = other.address() as import('node:net').AddressInfo;
    try {
      const result = await start({ PORT: String(port), CROSSDEPLOY_DATA_DIR: join(root, 'data') });
      expect(result.started).toBe(false);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(result.stderr).toContain(`PORT=${port + 1} npm start`);
      // A message, not a stack trace.
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      other.close();
    }
  });

  it('accepts a registry whose localPath values exist (the sample registry)', () => {
    expect(() => checkLocalSources(loadRegistryFile(SAMPLE_REGISTRY), SAMPLE_REGISTRY)).not.toThrow();
  });
});

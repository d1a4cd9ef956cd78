import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `crossdeploy logs --json | head`: the reader goes away after a few lines while the CLI still has pages to
 * print. Like any Unix filter, the CLI then stops quietly (exit 0, nothing on stderr) instead of dying on EPIPE
 * with a stack trace.
 */

const BIN = fileURLToPath(new URL('../../bin/crossdeploy.mjs', import.meta.url));
const ID = '01JDQ2Z7R4K8V9XG3N5T6W1YBC';
const PAGES = 20;

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const page = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('cursor') ?? '0');
    const items = Array.from({ length: 500 }, (_, i) => ({
      job: 'build',
      at: '2025-01-31T14:00:00.000Z',
      message: `line ${page * 500 + i} ${'x'.repeat(200)}`,
    }));
    const body = { items, ...(page + 1 < PAGES ? { nextCursor: String(page + 1) } : {}) };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Runs `crossdeploy ARGS | head -n 1` in bash and reports the CLI's own exit status and stderr. */
function pipedIntoHead(args: string[]): Promise<{ status: number; stderr: string; stdout: string }> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const script = `${quoted} 2> "$ERR" | head -n 1; echo "status=\${PIPESTATUS[0]}"; cat "$ERR" >&2`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `ERR=$(mktemp); ${script}; rm -f "$ERR"`], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', () => {
      const status = Number(/status=(\d+)/.exec(stdout)?.[1] ?? Number.NaN);
      resolve({ status, stderr, stdout });
    });
  });
}

describe('crossdeploy piped into a reader that stops early', () => {
  it.each([
    ['logs --json', ['logs', ID, '--json']],
    ['logs', ['logs', ID]],
  ])('%s | head exits 0 and prints nothing on stderr', async (_what, args) => {
    const run = await pipedIntoHead([...args, '--url', url]);
    expect(run.stdout).toMatch(/line 0 /);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});

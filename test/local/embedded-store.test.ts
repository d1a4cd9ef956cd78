import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import { ConfigError, TransientError } from '#shared/errors.ts';
import { errorResponse, PROBLEM_CONTENT_TYPE } from '../../functions/api/problem.ts';
import type { LocalConfig } from '../../local/config.ts';
import { openLocalStore } from '../../local/store.ts';

/**
 * The embedded store (dynalite on LevelDB in the data directory) with a database that is really damaged:
 * made in a temp dir, written, closed, and corrupted on disk.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const QUICK = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
/** Long enough to ride out the store process's restart after a fault. */
const PATIENT = { attempts: 7, baseDelayMs: 50, maxDelayMs: 2_000 };

function config(): LocalConfig {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-db-'));
  dirs.push(dataDir);
  return { port: 0, host: '127.0.0.1', dataDir, registryPath: '', schedules: false };
}

const deployment = (i: number) =>
  newDeployment({
    deploymentId: `D${String(i).padStart(4, '0')}`,
    application: 'hello-world',
    environment: 'staging',
    ref: 'main',
    // Enough bytes that the history spans many blocks; compressible, so a damaged block fails to decompress
    // (LevelDB does not verify checksums on reads by default: damage in a raw block reads back as garbage).
    reason: `${i} ${'reason '.repeat(500)}`,
    requester: { type: 'local', user: 'me' },
    trigger: 'local',
    requestedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  });

/** Writes some history, then reopens once so LevelDB moves it from its log into a table file. */
async function storeWithHistory(cfg: LocalConfig) {
  const first = await openLocalStore(cfg, { retry: QUICK });
  for (let i = 0; i < 80; i++) await first.store.createDeployment(deployment(i));
  await first.close();
  const second = await openLocalStore(cfg, { retry: QUICK });
  await second.close();
}

function corruptTables(dataDir: string) {
  const db = join(dataDir, 'db');
  const tables = readdirSync(db).filter((name) => name.endsWith('.ldb'));
  expect(tables.length).toBeGreaterThan(0);
  for (const name of tables) {
    const bytes = readFileSync(join(db, name));
    // The first part of the file holds the index entries (history); the table's own description, which
    // every start reads, sorts last and stays intact.
    for (let at = Math.floor(bytes.length * 0.05); at < bytes.length * 0.85; at += 1_000) {
      for (let i = 0; i < 32; i++) bytes[at + i] = (bytes[at + i] ?? 0) ^ 0xff;
    }
    writeFileSync(join(db, name), bytes);
  }
}

describe('the embedded store with a damaged database', () => {
  it('answers a history read over a corrupt table file with a 503 problem, and keeps serving', async () => {
    const cfg = config();
    await storeWithHistory(cfg);
    corruptTables(cfg.dataDir);
    const local = await openLocalStore(cfg, { retry: PATIENT });
    try {
      const error = await local.store.listHistory('hello-world', 'staging', { limit: 100 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TransientError);
      const response = errorResponse(error);
      expect(response.statusCode).toBe(503);
      expect(response.headers?.['content-type']).toBe(PROBLEM_CONTENT_TYPE);
      // The store is still there for what the damage does not touch.
      expect(await local.store.getLock('other-app', 'prod')).toBeUndefined();
    } finally {
      await local.close();
    }
  }, 60_000);

  it('refuses to start on a database it cannot open, naming the directory and the reason', async () => {
    const cfg = config();
    await storeWithHistory(cfg);
    writeFileSync(join(cfg.dataDir, 'db', 'CURRENT'), 'not a manifest name\n');
    const error = await openLocalStore(cfg, { retry: QUICK }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toContain(join(cfg.dataDir, 'db'));
    expect(error?.message).not.toMatch(/^Database is closed$/);
    expect(error?.message).toMatch(/corrupt|CURRENT|MANIFEST/i);
  });

  it('refuses a database another process holds open, as one server per data directory', async () => {
    const cfg = config();
    const first = await openLocalStore(cfg, { retry: QUICK });
    try {
      const error = await openLocalStore(cfg, { retry: QUICK }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).toContain('in use by another crossdeploy server');
    } finally {
      await first.close();
    }
  });
});

describe('a stop signal sent to the whole process group (Ctrl-C, kill -TERM -pgid)', () => {
  const storeChild = (): number => {
    const pids = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'embedded-store-process'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
    expect(pids).toHaveLength(1);
    return pids[0]!;
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('is left to the server: the store process keeps serving (no fault, no restart) until the server closes it', async () => {
    const cfg = config();
    const local = await openLocalStore(cfg, { retry: QUICK });
    await local.store.createDeployment(deployment(1));
    const child = storeChild();
    // The terminal signals every process of the group; the store must not stop before the server does.
    process.kill(child, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(alive(child)).toBe(true);
    expect(storeChild()).toBe(child);
    expect((await local.store.getDeployment('D0001'))?.deploymentId).toBe('D0001');
    await local.close();
    expect(alive(child)).toBe(false);
  });
});

import { linkSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '#shared/errors.ts';
import { processIdentity } from './processes.ts';

/** A takeover left behind by a server that died in the middle of one is ignored after this long. */
const STALE_TAKEOVER_MS = 10_000;

/**
 * One server per data directory: two would both run jobs, recover each other's deployments and share one
 * LevelDB. The claim, `<data>/server.json`, names the owner by pid and start time, so a stale claim (after
 * kill -9) is taken over. Every step is atomic, so two servers racing for the directory never both win:
 * - a claim is written whole to a file of our own and hard-linked into place, which fails if one exists;
 * - a stale claim is removed only by the holder of `server.json.takeover` (created exclusively), and only if
 *   it is still the claim that was found stale.
 */
export function claimDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'server.json');
  const takeover = `${file}.takeover`;
  const self = processIdentity(process.pid);
  const mine = `${JSON.stringify({ pid: process.pid, startTime: self?.startTime ?? 0 })}\n`;

  for (let attempt = 0; attempt < 1_000; attempt++) {
    if (linkClaim(file, mine)) {
      return () => {
        // Only our own claim: a successor's must stay.
        if (readText(file) === mine) rmSync(file, { force: true });
      };
    }
    const found = readText(file);
    if (found === undefined) continue; // released in the meantime
    const owner = parseOwner(found);
    if (owner && owner.pid !== process.pid) {
      const alive = processIdentity(owner.pid);
      if (alive && alive.startTime === owner.startTime) {
        throw new ConfigError(
          `${dataDir} is in use by another crossdeploy server (pid ${owner.pid}); stop it or set CROSSDEPLOY_DATA_DIR`,
        );
      }
    }
    // Stale (its server is gone), unreadable, or an earlier claim of this very process: take it over.
    if (createExclusive(takeover, mine)) {
      try {
        if (readText(file) === found) unlinkSync(file);
      } finally {
        rmSync(takeover, { force: true });
      }
    } else {
      removeStaleTakeover(takeover);
      pause(2);
    }
  }
  throw new ConfigError(`${dataDir}: could not claim the data directory (server.json keeps changing)`);
}

function linkClaim(file: string, content: string): boolean {
  const own = `${file}.${process.pid}.claim`;
  writeFileSync(own, content);
  try {
    linkSync(own, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    rmSync(own, { force: true });
  }
}

function createExclusive(file: string, content: string): boolean {
  try {
    writeFileSync(file, content, { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  }
}

function removeStaleTakeover(file: string): void {
  try {
    if (Date.now() - statSync(file).mtimeMs > STALE_TAKEOVER_MS) rmSync(file, { force: true });
  } catch {
    // gone already
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function parseOwner(text: string): { pid: number; startTime: number } | undefined {
  try {
    const owner = JSON.parse(text) as { pid?: unknown; startTime?: unknown };
    return typeof owner.pid === 'number' && typeof owner.startTime === 'number'
      ? { pid: owner.pid, startTime: owner.startTime }
      : undefined;
  } catch {
    return undefined;
  }
}

/** A short synchronous wait (the claim runs once, at start, before anything else). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

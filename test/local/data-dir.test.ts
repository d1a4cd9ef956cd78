import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

/** Two real processes claiming the same data directories at the same moment, round after round. */

const CLAIMANT = fileURLToPath(new URL('../support/claim-race.ts', import.meta.url));
const ROUNDS = 40;
const REFUSAL = /is in use by another crossdeploy server \(pid \d+\); stop it or set CROSSDEPLOY_DATA_DIR/;

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function claimant(root: string) {
  const child = spawn(process.execPath, [CLAIMANT, root, String(ROUNDS)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const results = new Map<number, string>();
  const waiters = new Map<number, () => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const { round, result } = JSON.parse(line) as { round: number; result: string };
    results.set(round, result);
    waiters.get(round)?.();
  });
  const result = (round: number) =>
    new Promise<string>((resolve) => {
      if (results.has(round)) return resolve(results.get(round)!);
      waiters.set(round, () => resolve(results.get(round)!));
    });
  return { result };
}

describe('the data-directory claim', () => {
  it.each([
    ['an unclaimed directory', (_dir: string) => {}],
    [
      'a directory with a stale claim (its server killed)',
      (dir: string) => writeFileSync(join(dir, 'server.json'), '{"pid":999999999,"startTime":1}\n'),
    ],
  ])(
    'lets exactly one of two servers racing for %s have it; the other gets the refusal',
    async (_name, prepare) => {
      const root = mkdtempSync(join(tmpdir(), 'crossdeploy-claim-'));
      dirs.push(root);
      for (let round = 0; round < ROUNDS; round++) {
        mkdirSync(join(root, `dir-${round}`));
        prepare(join(root, `dir-${round}`));
      }
      const a = claimant(root);
      const b = claimant(root);
      for (let round = 0; round < ROUNDS; round++) {
        writeFileSync(join(root, `go-${round}`), '');
        const results = [await a.result(round), await b.result(round)];
        const claimed = results.filter((r) => r === 'claimed');
        expect(claimed, `round ${round}: ${JSON.stringify(results)}`).toHaveLength(1);
        expect(results.find((r) => r !== 'claimed')).toMatch(REFUSAL);
      }
    },
  );
});

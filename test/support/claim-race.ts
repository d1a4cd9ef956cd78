/**
 * One claimant of a data-directory race (test/local/data-dir.test.ts), a process of its own: for each round it
 * waits for `<root>/go-<round>`, claims `<root>/dir-<round>` at once, and prints what happened. It keeps
 * its claims (it stays alive) until stdin closes.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { claimDataDir } from '../../local/data-dir.ts';

const [root = '', roundsArg = '0'] = process.argv.slice(2);
for (let round = 0; round < Number(roundsArg); round++) {
  const go = join(root, `go-${round}`);
  while (!existsSync(go)) {
    // Spin: both claimants must leave the barrier as close together as possible.
  }
  const dir = join(root, `dir-${round}`);
  mkdirSync(dir, { recursive: true });
  let result: string;
  try {
    claimDataDir(dir);
    result = 'claimed';
  } catch (error) {
    result = (error as Error).message;
  }
  process.stdout.write(`${JSON.stringify({ round, result })}\n`);
}
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

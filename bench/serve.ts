/**
 * The bench's local server in a process of its own (for the ack-latency clients, which must not share its
 * event loop): `node bench/serve.ts <full|api-only> <lockPollMs>`. Prints `{"url": ...}` once it listens;
 * when its stdin closes it prints what it did (`{"starts": ..., "executionsEnded": ...}`) and exits.
 */
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

import { rmSync } from 'node:fs';

const { benchPairs, startStack } = await import('./harness.ts');
const mode = process.argv[2] === 'api-only' ? 'api-only' : 'full';
const waitMs = Number(process.argv[3] ?? 1_000);
const stack = await startStack({ pairs: benchPairs(100), waitMs, mode });
process.stdout.write(`${JSON.stringify({ url: stack.url })}\n`);

process.stdin.on('end', () => {
  const ended = [...stack.executions.values()].filter((e) => e.endedAt !== undefined).length;
  process.stdout.write(
    `${JSON.stringify({ starts: stack.starts + stack.executions.size, executionsEnded: ended })}\n`,
  );
  // Whatever still runs is abandoned: the store lives in memory and goes with the process (and dynalite's
  // process with its stdin); only the temporary directory needs removing.
  rmSync(stack.root, { recursive: true, force: true });
  process.exit(0);
});
process.stdin.resume();

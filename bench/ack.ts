import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchPairs } from './harness.ts';
import { nowMs, percentile, round } from './stats.ts';

/**
 * Ack latency: `clients` concurrent clients, each sending POST /deployments and the next as soon as the
 * answer arrives, for `seconds`, against the bench's server in its own process (bench/serve.ts). Two modes:
 * `api-only` does per request what the API Lambda does (validate, record, start the execution; the start is
 * only counted, as StartExecution would hand it to Step Functions); `full` is local mode, where the same
 * process also runs every accepted deployment's workflow.
 */

const SERVE = fileURLToPath(new URL('./serve.ts', import.meta.url));

export interface AckResult {
  mode: 'api-only' | 'full';
  clients: number;
  seconds: number;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  byStatus: Record<string, number>;
  executionsStarted: number;
}

export async function measureAck(
  mode: 'api-only' | 'full',
  options: { clients: number; seconds: number; lockPollMs: number },
): Promise<AckResult> {
  const child = spawn(process.execPath, [SERVE, mode, String(options.lockPollMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffer = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let at = buffer.indexOf('\n');
    while (at >= 0) {
      lines.push(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
      at = buffer.indexOf('\n');
      for (const wake of waiters.splice(0)) wake();
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const nextLine = async (n: number) => {
    while (lines.length < n) {
      const ended = await Promise.race([
        new Promise<false>((resolve) => waiters.push(() => resolve(false))),
        exited.then(() => true),
      ]);
      if (ended && lines.length < n) throw new Error('the bench server exited early');
    }
    return JSON.parse(lines[n - 1] as string) as Record<string, unknown>;
  };
  const { url } = (await nextLine(1)) as { url: string };

  const pairs = benchPairs(100);
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  let errors = 0;
  const deadline = nowMs() + options.seconds * 1000;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: options.clients }, async (_, client) => {
      for (let n = 0; nowMs() < deadline; n++) {
        const pair = pairs[(client * 2 + n * options.clients * 2) % pairs.length]!;
        const sent = nowMs();
        let status = 'network error';
        try {
          const response = await fetch(`${url}/deployments`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ...pair, ref: 'main', reason: 'bench: ack' }),
          });
          await response.arrayBuffer();
          status = String(response.status);
        } catch {
          // counted below
        }
        latencies.push(nowMs() - sent);
        byStatus[status] = (byStatus[status] ?? 0) + 1;
        if (status !== '202') errors++;
      }
    }),
  );
  const elapsed = (nowMs() - started) / 1000;
  child.stdin.end();
  const summary = (await nextLine(2)) as { starts: number };
  await exited;
  return {
    mode,
    clients: options.clients,
    seconds: options.seconds,
    requests: latencies.length,
    perSecond: round(latencies.length / elapsed),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(Math.max(...latencies)),
    errors,
    byStatus,
    executionsStarted: summary.starts,
  };
}

import { benchPairs, executionOf, postDeployment, type Stack } from './harness.ts';
import { percentile, round } from './stats.ts';

/**
 * Orchestration overhead: deployments one after another (nothing queues), each timed from the moment the
 * client sends POST /deployments to the deploy job's start (the stand-in is called) and to the terminal
 * status (the record's finishedAt, written by Record Result). The first few warm the JIT and are not counted.
 */

export interface OverheadResult {
  deployments: number;
  warmup: number;
  failed: number;
  ackMs: { p50: number; p99: number };
  toDeployStartMs: { p50: number; p99: number };
  toTerminalMs: { p50: number; p99: number };
  /** DynamoDB calls per deployment, all operations (the local engine's cost driver). */
  dynamoCallsPerDeployment: number;
}

const p = (samples: number[]) => ({
  p50: round(percentile(samples, 50)),
  p99: round(percentile(samples, 99)),
});

export async function measureOverhead(stack: Stack, count: number, warmup: number): Promise<OverheadResult> {
  const pairs = benchPairs(100);
  const ack: number[] = [];
  const toDeploy: number[] = [];
  const toTerminal: number[] = [];
  let failed = 0;
  let callsBefore = 0;
  for (let i = 0; i < warmup + count; i++) {
    if (i === warmup) callsBefore = totalCalls(stack);
    const pair = pairs[i % pairs.length]!;
    const posted = await postDeployment(stack.url, pair, 'bench: overhead');
    const id = posted.body.deploymentId;
    if (posted.status !== 202 || !id) throw new Error(`POST /deployments answered ${posted.status}`);
    await executionOf(stack, id);
    const deployment = await stack.store.getDeployment(id);
    const deployStart = stack.jobStarts.find((j) => j.deploymentId === id && j.job === 'deploy');
    if (deployment?.status !== 'SUCCEEDED' || !deployStart || !deployment.finishedAt) {
      failed++;
      continue;
    }
    if (i < warmup) continue;
    ack.push(posted.ms);
    toDeploy.push(deployStart.at - posted.started);
    toTerminal.push(Date.parse(deployment.finishedAt) - posted.started);
  }
  return {
    deployments: count,
    warmup,
    failed,
    ackMs: p(ack),
    toDeployStartMs: p(toDeploy),
    toTerminalMs: p(toTerminal),
    // Less the one GetItem per deployment this loop makes itself.
    dynamoCallsPerDeployment: round((totalCalls(stack) - callsBefore) / count - 1, 1),
  };
}

const totalCalls = (stack: Stack) => [...stack.meter.calls.values()].reduce((sum, n) => sum + n, 0);

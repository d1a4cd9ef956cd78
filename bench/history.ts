import { type AttributeValue, BatchWriteItemCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ulid } from 'ulid';
import { DynamoDeploymentStore } from '#shared/aws/store.ts';
import { createTable, executionOf, postDeployment, type Stack, TABLE } from './harness.ts';
import { median, nowMs, percentile, pool, round } from './stats.ts';

/**
 * History: the latency of a page of 50 (the real DynamoDeploymentStore.listHistory) from an environment that
 * holds `big` records against one that holds `small`. The small one lives in a table of its own: in one
 * table a Scan would be as slow for both and the ratio would hide it. The records are copies of a real
 * one: a deployment run through the workflow, read back raw, and written again with new ids, times and
 * index keys by BatchWriteItem (the store's key layout: DEP#<id>/META, GSI1 = ENV#<app>#<env> /
 * <requestedAt>#<id>, GSI2 = OK#<app>#<env> / <finishedAt>#<id> for a success).
 */

type Item = Record<string, AttributeValue>;

export interface HistoryResult {
  big: { records: number; table: string; p50Ms: number; p99Ms: number };
  small: { records: number; table: string; p50Ms: number; p99Ms: number };
  ratio: number;
  samples: number;
  loadSeconds: number;
  queries: number;
  scans: number;
  pageSize: number;
  newestFirst: boolean;
}

const BIG = { application: 'history-big', environment: 'prod' };
const SMALL = { application: 'history-small', environment: 'prod' };
const SMALL_TABLE = `${TABLE}-small`;

export async function measureHistory(
  stack: Stack,
  options: { big: number; small: number; samples: number },
): Promise<HistoryResult> {
  const template = await realRecord(stack);
  await createTable(stack.raw, SMALL_TABLE);
  const stores = {
    big: stack.store,
    small: new DynamoDeploymentStore({ client: stack.doc, tableName: SMALL_TABLE }),
  };
  const loadStarted = nowMs();
  await load(stack, TABLE, template, BIG, options.big);
  await load(stack, SMALL_TABLE, template, SMALL, options.small);
  const loadSeconds = (nowMs() - loadStarted) / 1000;

  const pageSize = 50;
  const times = { big: [] as number[], small: [] as number[] };
  let newestFirst = true;
  const queriesBefore = stack.meter.callCount('Query');
  const scansBefore = stack.meter.callCount('Scan');
  const warmup = 5;
  for (let i = 0; i < warmup + options.samples; i++) {
    for (const [name, pair] of [
      ['big', BIG],
      ['small', SMALL],
    ] as const) {
      const started = nowMs();
      const page = await stores[name].listHistory(pair.application, pair.environment, { limit: pageSize });
      const ms = nowMs() - started;
      if (page.items.length !== pageSize) throw new Error(`a history page held ${page.items.length} items`);
      const times_ = page.items.map((d) => d.requestedAt);
      if (times_.some((t, j) => j > 0 && t > (times_[j - 1] as string))) newestFirst = false;
      if (i >= warmup) times[name].push(ms);
    }
  }
  const big = median(times.big);
  const small = median(times.small);
  return {
    big: {
      records: options.big,
      table: TABLE,
      p50Ms: round(big, 2),
      p99Ms: round(percentile(times.big, 99), 2),
    },
    small: {
      records: options.small,
      table: SMALL_TABLE,
      p50Ms: round(small, 2),
      p99Ms: round(percentile(times.small, 99), 2),
    },
    ratio: round(big / small, 2),
    samples: options.samples,
    loadSeconds: round(loadSeconds),
    queries: stack.meter.callCount('Query') - queriesBefore,
    scans: stack.meter.callCount('Scan') - scansBefore,
    pageSize,
    newestFirst,
  };
}

/** A finished deployment's item as the store wrote it. */
async function realRecord(stack: Stack): Promise<Item> {
  const posted = await postDeployment(stack.url, { application: 'app-01', environment: 'dev' }, 'history');
  const id = posted.body.deploymentId ?? '';
  await executionOf(stack, id);
  const { Item } = await stack.raw.send(
    new GetItemCommand({
      TableName: TABLE,
      Key: { PK: { S: `DEP#${id}` }, SK: { S: 'META' } },
      ConsistentRead: true,
    }),
  );
  if (Item?.status?.S !== 'SUCCEEDED') throw new Error('the template deployment did not succeed');
  return Item;
}

/** `count` copies for one environment, newest last, 25 per BatchWriteItem, 8 batches in flight. */
async function load(stack: Stack, table: string, template: Item, pair: typeof BIG, count: number) {
  const first = Date.parse('2020-01-01T00:00:00Z');
  const batches: Item[][] = [];
  for (let i = 0; i < count; i += 25) {
    const batch: Item[] = [];
    for (let j = i; j < Math.min(count, i + 25); j++) {
      const requested = first + j * 60_000;
      const id = ulid(requested);
      const requestedAt = new Date(requested).toISOString();
      const finishedAt = new Date(requested + 300_000).toISOString();
      batch.push({
        ...template,
        PK: { S: `DEP#${id}` },
        SK: { S: 'META' },
        GSI1PK: { S: `ENV#${pair.application}#${pair.environment}` },
        GSI1SK: { S: `${requestedAt}#${id}` },
        GSI2PK: { S: `OK#${pair.application}#${pair.environment}` },
        GSI2SK: { S: `${finishedAt}#${id}` },
        deploymentId: { S: id },
        application: { S: pair.application },
        environment: { S: pair.environment },
        requestedAt: { S: requestedAt },
        updatedAt: { S: finishedAt },
        finishedAt: { S: finishedAt },
        release: { N: String(j + 1) },
      });
    }
    batches.push(batch);
  }
  await pool(batches, 8, async (batch) => {
    let pending: Record<string, { PutRequest: { Item: Item } }[]> = {
      [table]: batch.map((Item) => ({ PutRequest: { Item } })),
    };
    while ((pending[table]?.length ?? 0) > 0) {
      const { UnprocessedItems } = await stack.raw.send(new BatchWriteItemCommand({ RequestItems: pending }));
      pending = (UnprocessedItems ?? {}) as typeof pending;
    }
  });
}

import type { Server } from 'node:http';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigError, CrossdeployError, TransientError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import { DynamoDeploymentStore, TABLE_DEFINITION } from '#shared/store.ts';
import type { LocalConfig } from './config.ts';

/** The table name the embedded store uses (it lives in the data directory, so it never collides). */
export const EMBEDDED_TABLE = 'crossdeploy';

export interface LocalStore {
  store: DynamoDeploymentStore;
  /** For the banner. */
  description: string;
  embedded: boolean;
  close(): Promise<void>;
}

/**
 * The same DynamoDB store the Lambdas use, on an embedded dynalite persisting to `<data>/db` (LevelDB
 * through classic-level), or on a real table when CROSSDEPLOY_TABLE_NAME is set.
 */
export async function openLocalStore(config: LocalConfig): Promise<LocalStore> {
  if (config.dynamo) return openExternal(config.dynamo);
  const path = join(config.dataDir, 'db');
  const { default: dynalite } = await import('dynalite');
  const server: Server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the embedded dynalite did not report a port');
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${address.port}`,
    region: 'local',
    // dynalite does not check signatures; these only satisfy the SDK's signer.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await ensureTable(client, EMBEDDED_TABLE, true);
  } catch (error) {
    server.close();
    const message = (error as Error).message ?? '';
    if (/lock/i.test(message)) {
      throw new ConfigError(
        `${path} is in use by another crossdeploy server (one server per data directory)`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  return {
    store: storeOn(client, EMBEDDED_TABLE),
    description: `embedded dynalite, persisted in ${path}`,
    embedded: true,
    close: () =>
      new Promise<void>((resolve) => {
        client.destroy();
        server.close(() => resolve());
        // Keep-alive sockets from the SDK would hold close() open.
        server.closeAllConnections?.();
      }),
  };
}

async function openExternal(dynamo: { endpoint?: string; tableName: string }): Promise<LocalStore> {
  const client = new DynamoDBClient(dynamo.endpoint ? { endpoint: dynamo.endpoint } : {});
  // A local emulator gets its table created; a real AWS table comes from template.yaml and must exist.
  await ensureTable(client, dynamo.tableName, dynamo.endpoint !== undefined);
  return {
    store: storeOn(client, dynamo.tableName),
    description: `DynamoDB table ${dynamo.tableName}${dynamo.endpoint ? ` at ${dynamo.endpoint}` : ''}`,
    embedded: false,
    close: async () => client.destroy(),
  };
}

function storeOn(client: DynamoDBClient, tableName: string): DynamoDeploymentStore {
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return resilientStore(new DynamoDeploymentStore({ client: doc, tableName }));
}

/** Node's and the SDK's words for a store that did not answer this time (not for a refused request). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);
const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalFailure',
  'TimeoutError',
]);

/** Whether a store call failed because the store was away or overloaded, so the same call may succeed later. */
export function isTransientStoreError(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  if (error instanceof CrossdeployError) return false;
  const e = error as { name?: string; code?: string; $fault?: string; $retryable?: unknown } | undefined;
  if (!e) return false;
  return (
    TRANSIENT_CODES.has(e.code ?? '') ||
    TRANSIENT_NAMES.has(e.name ?? '') ||
    e.$fault === 'server' ||
    e.$retryable !== undefined
  );
}

export interface StoreRetry {
  /** Attempts per call, the first included. */
  attempts: number;
  /** First delay, doubled per attempt up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** About ten seconds of a store that resets connections or restarts, before a call gives up. */
export const STORE_RETRY: StoreRetry = { attempts: 8, baseDelayMs: 100, maxDelayMs: 3_200 };

/**
 * Every call of the store, retried while it fails transiently (the SDK's own three quick attempts do not
 * outlast a store that resets connections for a few seconds, or an embedded store restarting). What still
 * fails becomes a TransientError: the state machine retries that name, and the API answers 503.
 */
export function resilientStore<T extends object>(store: T, retry: StoreRetry = STORE_RETRY): T {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await value.apply(target, args);
          } catch (error) {
            if (!isTransientStoreError(error)) throw error;
            if (attempt >= retry.attempts) {
              if (error instanceof TransientError) throw error;
              throw new TransientError(`the store did not answer ${String(property)}`, { cause: error });
            }
            logger.debug('store call failed transiently; retrying', {
              call: String(property),
              attempt,
              error,
            });
            const ms = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
            await new Promise((resolve) => setTimeout(resolve, ms));
          }
        }
      };
    },
  });
}

async function ensureTable(client: DynamoDBClient, tableName: string, create: boolean): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceNotFoundException') throw error;
  }
  if (!create) {
    throw new ConfigError(
      `DynamoDB table ${tableName} does not exist (deploy the orchestrator's template first)`,
    );
  }
  await client.send(new CreateTableCommand({ TableName: tableName, ...TABLE_DEFINITION }));
  for (let i = 0; i < 100; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`DynamoDB table ${tableName} did not become ACTIVE`);
}

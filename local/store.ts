import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDeploymentStore, TABLE_DEFINITION } from '#shared/aws/store.ts';
import { ConfigError, isTransientError, TransientError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
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
 * through classic-level) in a process of its own (local/embedded-store-process.ts), or on a real table when
 * CROSSDEPLOY_TABLE_NAME is set. Every call is retried while the store fails transiently (resilientStore).
 */
export async function openLocalStore(
  config: LocalConfig,
  options: { retry?: StoreRetry } = {},
): Promise<LocalStore> {
  if (config.dynamo) return openExternal(config.dynamo, options.retry);
  const path = join(config.dataDir, 'db');
  const embedded = await EmbeddedStore.start(path);
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${embedded.port}`,
    region: 'local',
    // dynalite does not check signatures; these only satisfy the SDK's signer.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await resilientStore({ ensure: () => ensureTable(client, EMBEDDED_TABLE, true) }, options.retry).ensure();
  } catch (error) {
    client.destroy();
    await embedded.close();
    throw new ConfigError(
      `the embedded store in ${path} did not answer: ${embedded.lastFault ?? (error as Error).message}`,
      { cause: error },
    );
  }
  return {
    store: storeOn(client, EMBEDDED_TABLE, options.retry),
    description: `embedded dynalite, persisted in ${path}`,
    embedded: true,
    close: async () => {
      client.destroy();
      await embedded.close();
    },
  };
}

const EMBEDDED_PROCESS = fileURLToPath(new URL('./embedded-store-process.ts', import.meta.url));

type EmbeddedMessage =
  | { type: 'listening'; port: number }
  | { type: 'failed'; message: string; locked: boolean }
  | { type: 'fault'; message: string };

/**
 * The embedded store's process, restarted on the same port whenever a fault ends it (a corrupt block read,
 * a full disk). Meanwhile calls fail with a reset or refused connection, which resilientStore retries.
 */
class EmbeddedStore {
  private readonly path: string;
  port = 0;
  /** What ended the process last, for the log and for a store that never answers at start. */
  lastFault: string | undefined;
  private child: ChildProcess | undefined;
  private closing = false;
  private restarts = 0;

  private constructor(path: string) {
    this.path = path;
  }

  static async start(path: string): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(path);
    await store.spawn();
    return store;
  }

  private spawn(): Promise<void> {
    const child = fork(EMBEDDED_PROCESS, [this.path, String(this.port)], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      stderr = `${stderr}${chunk}`.slice(-2_000);
    });
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let listening = false;
    child.on('message', (message: EmbeddedMessage) => {
      if (message.type === 'listening') {
        listening = true;
        this.port = message.port;
        this.restarts = 0;
        resolve();
      } else if (message.type === 'failed') {
        reject(
          new ConfigError(
            message.locked
              ? `${this.path} is in use by another crossdeploy server (one server per data directory)`
              : `the embedded store in ${this.path} cannot be opened: ${message.message}. Move the directory aside to start with an empty store, or restore it from a backup.`,
          ),
        );
      } else {
        this.lastFault = message.message;
      }
    });
    child.once('exit', (code, signal) => {
      if (!listening) {
        reject(
          new ConfigError(
            `the embedded store in ${this.path} did not start (exit ${code ?? signal}): ${stderr.trim() || 'no output'}`,
          ),
        );
        return;
      }
      if (this.closing) return;
      logger.error('the embedded store stopped; restarting it', {
        path: this.path,
        fault: this.lastFault ?? stderr.trim(),
        code,
        signal,
      });
      this.restart();
    });
    return promise;
  }

  private restart(): void {
    const ms = Math.min(5_000, 100 * 2 ** this.restarts++);
    setTimeout(() => {
      if (this.closing) return;
      this.spawn().catch((error: unknown) => {
        if (this.closing) return;
        logger.error('the embedded store could not be restarted', { path: this.path, error });
        this.restart();
      });
    }, ms).unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // It ignores stop signals (they are the server's); a channel already gone leaves SIGKILL as the way.
    if (!child.connected || !child.send({ type: 'close' })) child.kill('SIGKILL');
    const stuck = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(stuck);
  }
}

async function openExternal(
  dynamo: { endpoint?: string; tableName: string },
  retry?: StoreRetry,
): Promise<LocalStore> {
  const client = new DynamoDBClient(dynamo.endpoint ? { endpoint: dynamo.endpoint } : {});
  // A local emulator gets its table created; a real AWS table comes from template.yaml and must exist.
  await ensureTable(client, dynamo.tableName, dynamo.endpoint !== undefined);
  return {
    store: storeOn(client, dynamo.tableName, retry),
    description: `DynamoDB table ${dynamo.tableName}${dynamo.endpoint ? ` at ${dynamo.endpoint}` : ''}`,
    embedded: false,
    close: async () => client.destroy(),
  };
}

function storeOn(client: DynamoDBClient, tableName: string, retry?: StoreRetry): DynamoDeploymentStore {
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return resilientStore(new DynamoDeploymentStore({ client: doc, tableName }), retry);
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
            if (!isTransientError(error)) throw error;
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

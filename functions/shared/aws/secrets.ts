import {
  GetSecretValueCommand,
  type SecretsManagerClient,
  SecretsManagerServiceException,
} from '@aws-sdk/client-secrets-manager';
import { ConfigError, TransientError } from '../errors.ts';

/** Reads a secret's value from AWS Secrets Manager (GetSecretValue). */

export interface SecretSource {
  read(): Promise<string>;
}

export interface SecretsManagerSecretOptions {
  client: SecretsManagerClient;
  secretId: string;
  /** The whole read, retries included: the secret is read while Slack waits for its answer. */
  timeoutMs?: number;
}

const TRANSIENT = new Set(['ThrottlingException', 'InternalServiceError', 'RequestTimeout']);

export class SecretsManagerSecret implements SecretSource {
  private readonly options: SecretsManagerSecretOptions;

  constructor(options: SecretsManagerSecretOptions) {
    this.options = options;
  }

  async read(): Promise<string> {
    const { client, secretId, timeoutMs = 5_000 } = this.options;
    let secret: string | undefined;
    try {
      ({ SecretString: secret } = await client.send(new GetSecretValueCommand({ SecretId: secretId }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      }));
    } catch (error) {
      if (!(error instanceof SecretsManagerServiceException)) {
        throw new TransientError('Secrets Manager did not answer', { cause: error });
      }
      // Only the error's name, and no cause: Secrets Manager's messages name ARNs, and nothing about the
      // secret may reach a log.
      if (TRANSIENT.has(error.name) || error.$fault === 'server') {
        throw new TransientError(`Secrets Manager GetSecretValue: ${error.name}`);
      }
      throw new ConfigError(`the secret could not be read (${error.name})`);
    }
    if (typeof secret !== 'string' || secret === '') {
      throw new ConfigError('the secret has no string value');
    }
    return secret.trim();
  }
}

/**
 * Reads the secret once per process (a Lambda cold start) and keeps it. A failed read is not kept, so the
 * next invocation tries again; concurrent first calls share one read.
 */
export function cachedSecret(source: SecretSource): () => Promise<string> {
  return refreshingSecret(source, Number.POSITIVE_INFINITY);
}

/**
 * Like cachedSecret, but a value is kept for `maxAgeMs` only: for a secret an operator sets after the stack
 * is deployed (the Slack bot token), which a warm process must pick up without a redeploy. A refresh that
 * fails keeps answering the last value read (and tries again on the next call); only a process that never
 * read the secret sees the error.
 */
export function refreshingSecret(
  source: SecretSource,
  maxAgeMs: number,
  now: () => number = Date.now,
): () => Promise<string> {
  let pending: Promise<string> | undefined;
  let lastGood: string | undefined;
  let readAt = 0;
  return () => {
    if (pending && now() - readAt >= maxAgeMs) pending = undefined;
    if (!pending) {
      readAt = now();
      const stale = lastGood;
      pending = source.read().then(
        (value) => {
          lastGood = value;
          return value;
        },
        (error: unknown) => {
          pending = undefined;
          if (stale !== undefined) return stale;
          throw error;
        },
      );
    }
    return pending;
  };
}

import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { ConfigError, TransientError } from '../errors.ts';

/**
 * Reads a secret's value from AWS Secrets Manager (GetSecretValue). The project has no Secrets Manager SDK
 * client, so this is the one call made directly: its JSON protocol signed with SigV4 by the signer the CLI
 * already uses. With `@aws-sdk/client-secrets-manager` installed this class becomes a thin wrapper around
 * GetSecretValueCommand behind the same `SecretSource` port; nothing else changes.
 */

export interface SecretSource {
  read(): Promise<string>;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Lambda puts the function role's temporary credentials in the environment. */
export function lambdaEnvironmentCredentials(
  env: NodeJS.ProcessEnv = process.env,
): () => Promise<AwsCredentials> {
  return async () => {
    const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN } = env;
    if (!AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY) {
      throw new ConfigError('no AWS credentials in the environment to read the secret with');
    }
    return {
      accessKeyId: AWS_ACCESS_KEY_ID,
      secretAccessKey: AWS_SECRET_ACCESS_KEY,
      ...(AWS_SESSION_TOKEN ? { sessionToken: AWS_SESSION_TOKEN } : {}),
    };
  };
}

export interface SecretsManagerOptions {
  secretId: string;
  region: string;
  credentials?: () => Promise<AwsCredentials>;
  /** Tests point this at a local server; production derives it from the region. */
  endpoint?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const THROTTLED = new Set(['ThrottlingException', 'InternalServiceError', 'RequestTimeout']);

export class SecretsManagerSecret implements SecretSource {
  private readonly options: SecretsManagerOptions;

  constructor(options: SecretsManagerOptions) {
    this.options = options;
  }

  async read(): Promise<string> {
    const { secretId, region } = this.options;
    const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    const url = new URL(this.options.endpoint ?? `https://secretsmanager.${region}.${suffix}/`);
    const body = JSON.stringify({ SecretId: secretId });
    const signer = new SignatureV4({
      service: 'secretsmanager',
      region,
      credentials: this.options.credentials ?? lambdaEnvironmentCredentials(),
      sha256: Sha256,
    });
    const signed = await signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'secretsmanager.GetSecretValue',
      },
      body,
    });
    // fetch sets Host from the URL (the value that was signed) and refuses to let callers set it.
    const { host: _host, ...headers } = signed.headers;
    let response: Response;
    try {
      response = await (this.options.fetch ?? fetch)(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
      });
    } catch (error) {
      throw new TransientError('Secrets Manager did not answer', { cause: error });
    }
    const payload = (await response.json().catch(() => ({}))) as {
      SecretString?: unknown;
      __type?: unknown;
    };
    if (!response.ok) {
      // Only the error type: Secrets Manager's messages name ARNs, and nothing about the secret may leak.
      const type =
        String(payload.__type ?? response.status)
          .split('#')
          .pop() ?? 'Error';
      if (THROTTLED.has(type) || response.status >= 500) {
        throw new TransientError(`Secrets Manager GetSecretValue: ${type}`);
      }
      throw new ConfigError(`the secret could not be read (${type})`);
    }
    if (typeof payload.SecretString !== 'string' || payload.SecretString === '') {
      throw new ConfigError('the secret has no string value');
    }
    return payload.SecretString.trim();
  }
}

/**
 * Reads the secret once per process (a Lambda cold start) and keeps it. A failed read is not kept, so the
 * next invocation tries again; concurrent first calls share one read.
 */
export function cachedSecret(source: SecretSource): () => Promise<string> {
  let pending: Promise<string> | undefined;
  return () => {
    pending ??= source.read().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  GetSecretValueCommand,
  InternalServiceError,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cachedSecret,
  refreshingSecret,
  type SecretSource,
  SecretsManagerSecret,
} from '#shared/aws/secrets.ts';
import { ConfigError, TransientError } from '#shared/errors.ts';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:crossdeploy-slack-AbCdEf';
const $metadata = { httpStatusCode: 400, requestId: 'r-1' };

// Mocked per test and restored after it, so one test can reach a real endpoint.
const mockSecretsManager = () => mockClient(SecretsManagerClient);
let secretsManager: ReturnType<typeof mockSecretsManager>;
beforeEach(() => {
  secretsManager = mockSecretsManager();
});
afterEach(() => {
  secretsManager.restore();
});

const source = () =>
  new SecretsManagerSecret({
    client: new SecretsManagerClient({ region: 'eu-west-1' }),
    secretId: SECRET_ARN,
  });

describe('SecretsManagerSecret', () => {
  it('asks GetSecretValue for the secret and returns its string, trimmed', async () => {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: SECRET_ARN })
      .resolves({ ARN: SECRET_ARN, Name: 'x', SecretString: 'the-signing-secret\n' });
    expect(await source().read()).toBe('the-signing-secret');
    expect(secretsManager).toReceiveCommandExactlyOnceWith(GetSecretValueCommand, { SecretId: SECRET_ARN });
  });

  it.each([
    [
      'AccessDeniedException',
      // Not in the service model: the SDK raises it as the service's base exception.
      new SecretsManagerServiceException({
        name: 'AccessDeniedException',
        $fault: 'client',
        message: `User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized to perform: secretsmanager:GetSecretValue on resource: ${SECRET_ARN}`,
        $metadata,
      }),
    ],
    [
      'ResourceNotFoundException',
      new ResourceNotFoundException({
        message: `Secrets Manager can't find the specified secret ${SECRET_ARN}.`,
        $metadata,
      }),
    ],
  ])('reports %s as a configuration error by its name only (messages name ARNs)', async (name, refusal) => {
    secretsManager.on(GetSecretValueCommand).rejects(refusal);
    const error = await source()
      .read()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(name);
    expect((error as Error).message).not.toContain('arn:');
    expect((error as Error).cause).toBeUndefined();
  });

  it('treats throttling, server errors and an unreachable endpoint as transient', async () => {
    secretsManager.on(GetSecretValueCommand).rejectsOnce(
      new SecretsManagerServiceException({
        name: 'ThrottlingException',
        $fault: 'client',
        $metadata,
        message: 'Rate exceeded',
      }),
    );
    await expect(source().read()).rejects.toBeInstanceOf(TransientError);
    secretsManager.on(GetSecretValueCommand).rejectsOnce(
      new InternalServiceError({
        message: 'An error occurred on the server side.',
        $metadata: { httpStatusCode: 500 },
      }),
    );
    await expect(source().read()).rejects.toBeInstanceOf(TransientError);
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' }));
    await expect(source().read()).rejects.toBeInstanceOf(TransientError);
  });

  it('refuses a secret without a string value', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ Name: 'x', SecretBinary: new Uint8Array([0, 1, 2]) });
    await expect(source().read()).rejects.toBeInstanceOf(ConfigError);
    secretsManager.on(GetSecretValueCommand).resolves({ Name: 'x', SecretString: '' });
    await expect(source().read()).rejects.toBeInstanceOf(ConfigError);
  });

  it('times out instead of hanging on an endpoint that never answers', async () => {
    // The real client this time: the timeout is the SDK's own request handling, which a mock replaces.
    secretsManager.restore();
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as AddressInfo).port;
    const slow = new SecretsManagerSecret({
      client: new SecretsManagerClient({
        region: 'eu-west-1',
        endpoint: `http://127.0.0.1:${port}`,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      }),
      secretId: SECRET_ARN,
      timeoutMs: 100,
    });
    const started = Date.now();
    await expect(slow.read()).rejects.toBeInstanceOf(TransientError);
    expect(Date.now() - started).toBeLessThan(5_000);
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });
});

describe('cachedSecret', () => {
  it('reads once per process and shares concurrent first reads', async () => {
    let reads = 0;
    const counting: SecretSource = { read: async () => `secret-${++reads}` };
    const secret = cachedSecret(counting);
    expect(await Promise.all([secret(), secret()])).toEqual(['secret-1', 'secret-1']);
    expect(await secret()).toBe('secret-1');
    expect(reads).toBe(1);
  });

  it('does not keep a failed read: the next call tries again', async () => {
    let reads = 0;
    const flaky: SecretSource = {
      read: async () => {
        reads++;
        if (reads === 1) throw new TransientError('throttled');
        return 'secret';
      },
    };
    const secret = cachedSecret(flaky);
    await expect(secret()).rejects.toThrow('throttled');
    expect(await secret()).toBe('secret');
    expect(reads).toBe(2);
  });
});

describe('refreshingSecret', () => {
  it('keeps a value for its maximum age, then reads again (a bot token put after the deploy is picked up)', async () => {
    let reads = 0;
    let now = 0;
    const counting: SecretSource = {
      read: async () => (++reads === 1 ? 'not-configured' : 'xoxb-put-later'),
    };
    const secret = refreshingSecret(counting, 600_000, () => now);
    expect(await Promise.all([secret(), secret()])).toEqual(['not-configured', 'not-configured']);
    now = 599_999;
    expect(await secret()).toBe('not-configured');
    now = 600_000;
    expect(await secret()).toBe('xoxb-put-later');
    expect(reads).toBe(2);
  });

  it('does not keep a failed read', async () => {
    let reads = 0;
    const flaky: SecretSource = {
      read: async () => {
        if (++reads === 1) throw new TransientError('throttled');
        return 'xoxb-token';
      },
    };
    const secret = refreshingSecret(flaky, 600_000, () => 0);
    await expect(secret()).rejects.toThrow('throttled');
    expect(await secret()).toBe('xoxb-token');
  });

  it('keeps answering the last value read when a refresh fails, and tries again next time', async () => {
    let reads = 0;
    let now = 0;
    const flaky: SecretSource = {
      read: async () => {
        reads++;
        if (reads === 2) throw new TransientError('throttled');
        return `xoxb-token-${reads}`;
      },
    };
    const secret = refreshingSecret(flaky, 600_000, () => now);
    expect(await secret()).toBe('xoxb-token-1');
    now = 600_000;
    expect(await secret()).toBe('xoxb-token-1');
    expect(await secret()).toBe('xoxb-token-3');
    expect(reads).toBe(3);
  });
});

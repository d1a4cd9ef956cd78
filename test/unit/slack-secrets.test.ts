import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedSecret, type SecretSource, SecretsManagerSecret } from '#shared/aws/secrets.ts';
import { ConfigError, TransientError } from '#shared/errors.ts';

/** A stand-in for the Secrets Manager endpoint on 127.0.0.1 that records what it was sent. */
interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let endpoint: string;
let received: Received[];
let answer: (req: Received) => { status: number; body: unknown };

beforeEach(async () => {
  received = [];
  answer = () => ({ status: 200, body: { Name: 'x', SecretString: 'the-signing-secret\n' } });
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(request);
      const { status, body } = answer(request);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:crossdeploy-slack-AbCdEf';
const source = () =>
  new SecretsManagerSecret({
    secretId: SECRET_ARN,
    region: 'eu-west-1',
    endpoint,
    credentials: async () => ({
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'token',
    }),
  });

describe('SecretsManagerSecret', () => {
  it('sends a SigV4-signed GetSecretValue for the secret and returns its string', async () => {
    expect(await source().read()).toBe('the-signing-secret');
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(JSON.parse(request?.body ?? '')).toEqual({ SecretId: SECRET_ARN });
    expect(request?.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(request?.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(request?.headers['x-amz-security-token']).toBe('token');
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/secretsmanager\/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$/,
    );
  });

  it('reports a refusal by its error type only (messages name ARNs)', async () => {
    answer = () => ({
      status: 400,
      body: {
        __type: 'AccessDeniedException',
        message: `User arn:aws:sts::1:x is not authorized on ${SECRET_ARN}`,
      },
    });
    const error = await source()
      .read()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('AccessDeniedException');
    expect((error as Error).message).not.toContain('arn:');
  });

  it('treats throttling and server errors as transient', async () => {
    answer = () => ({ status: 400, body: { __type: 'com.amazonaws.secretsmanager#ThrottlingException' } });
    await expect(source().read()).rejects.toBeInstanceOf(TransientError);
    answer = () => ({ status: 503, body: {} });
    await expect(source().read()).rejects.toBeInstanceOf(TransientError);
  });

  it('refuses a secret without a string value', async () => {
    answer = () => ({ status: 200, body: { Name: 'x', SecretBinary: 'AAAA' } });
    await expect(source().read()).rejects.toBeInstanceOf(ConfigError);
  });

  it('times out instead of hanging on an endpoint that never answers', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as AddressInfo).port;
    const slow = new SecretsManagerSecret({
      secretId: SECRET_ARN,
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}/`,
      timeoutMs: 100,
      credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }),
    });
    await expect(slow.read()).rejects.toBeInstanceOf(TransientError);
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

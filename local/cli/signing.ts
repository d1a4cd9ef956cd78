import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { SigningError } from './errors.ts';

/**
 * How a request to a crossdeploy API authenticates. A deployed crossdeploy sits behind API Gateway with
 * IAM authorization, so it gets SigV4; the local server on loopback needs nothing; a local server bound
 * to another address checks a bearer token.
 */
export type Auth = { kind: 'none' } | { kind: 'bearer'; token: string } | { kind: 'sigv4'; region: string };

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}
export type CredentialProvider = () => Promise<AwsCredentials>;

const EXECUTE_API_HOST = /^[a-z0-9]+\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$/;

export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    /^127(?:\.\d{1,3}){3}$/.test(host)
  );
}

/**
 * Picks the authentication for a base URL. An execute-api host is always signed and never sees the
 * token (it would be useless there, and a leaked secret). Any other non-loopback host is a local server
 * when a token is given, otherwise an API behind a custom domain, signed with the region from the env.
 */
export function authFor(url: URL, token: string | undefined, env: NodeJS.ProcessEnv): Auth {
  const executeApi = EXECUTE_API_HOST.exec(url.hostname.toLowerCase());
  if (executeApi?.[1]) return { kind: 'sigv4', region: executeApi[1] };
  if (token) return { kind: 'bearer', token };
  if (isLoopback(url)) return { kind: 'none' };
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new SigningError(
      `cannot tell the AWS region of ${url.origin} to sign requests: set AWS_REGION ` +
        '(or pass --token if this is a local crossdeploy server)',
    );
  }
  return { kind: 'sigv4', region };
}

/** What fetch sends. Signing works on this exact object, so what is signed is what goes on the wire. */
export interface OutgoingRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * Returns the request with SigV4 headers for API Gateway (`execute-api`). The path is passed as it goes
 * on the wire (already percent-encoded); the signer encodes it once more, as SigV4 wants for every
 * service but S3.
 */
export async function signRequest(
  request: OutgoingRequest,
  region: string,
  credentials: AwsCredentials | CredentialProvider,
  signingDate?: Date,
): Promise<OutgoingRequest> {
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 });
  const query: Record<string, string> = {};
  for (const [key, value] of request.url.searchParams) query[key] = value;
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: request.url.protocol,
      hostname: request.url.hostname,
      ...(request.url.port ? { port: Number(request.url.port) } : {}),
      path: request.url.pathname,
      query,
      headers: { ...request.headers, host: request.url.host },
      ...(request.body !== undefined ? { body: request.body } : {}),
    },
    signingDate ? { signingDate } : {},
  );
  // fetch derives Host from the URL (the same value that was signed) and does not let callers set it.
  const { host: _host, ...headers } = signed.headers;
  return { ...request, headers };
}

/**
 * The standard AWS credential chain (env, SSO, profiles, web identity, container, instance metadata),
 * loaded only when a request is actually signed so local use never pays for it.
 */
export async function defaultCredentials(): Promise<CredentialProvider> {
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  const provider = fromNodeProviderChain();
  return async () => {
    try {
      return await provider();
    } catch (error) {
      throw new SigningError(
        `no AWS credentials to sign the request (${(error as Error).message}); ` +
          'configure a profile, SSO session or environment credentials',
        { cause: error },
      );
    }
  };
}

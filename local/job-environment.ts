import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobStart } from '#shared/ports.ts';
import { JOB_MARKER } from './processes.ts';
import { type LocalRunner, simulatedChangeSetsDir } from './targets.ts';

/**
 * What a local job's process gets in its environment, and nothing more: what tools need on this machine,
 * the job contract's variables, CodeBuild's own, and, for the deploy job only, the user's AWS chain for
 * the credential helper. The build job runs repository code and gets no way into an AWS account.
 */

const TEMPLATE_JSON = fileURLToPath(new URL('./shims/template-json.ts', import.meta.url));

/**
 * Inherited by every job: what tools need to run on this machine. Server settings and secrets (the local API's
 * CROSSDEPLOY_API_TOKEN among them) are not, and HOME is the job's own.
 */
const INHERITED = [
  'PATH',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TERM',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'REQUESTS_CA_BUNDLE',
  'AWS_CA_BUNDLE',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'DOCKER_HOST',
  'VIRTUAL_ENV',
];
const INHERITED_PREFIXES = ['LC_', 'PYENV_', 'SAM_CLI_'];
/**
 * The deploy job's credential helper starts from the user's own chain; these carry it (besides the config
 * file and profile, which are saved separately before the job's AWS_CONFIG_FILE override).
 */
const SOURCE_CHAIN = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE',
  'AWS_METADATA_SERVICE_TIMEOUT',
  'AWS_METADATA_SERVICE_NUM_ATTEMPTS',
];
const SOURCE_CHAIN_PREFIXES = ['AWS_CONTAINER_', 'AWS_ENDPOINT_URL'];

export const buildArn = (buildId: string, region: string) =>
  `arn:aws:codebuild:${region}:000000000000:build/${buildId}`;

/** The environment of one job's process: the server's inherited part, the job's variables, CodeBuild's. */
export function jobEnvironment(
  /** The job's record (LocalJobRecord): its build id, start time, runner and contract variables. */
  record: {
    buildId: string;
    startedAt: string;
    runner: LocalRunner;
    environmentVariables: Record<string, string>;
  },
  job: JobStart,
  paths: {
    src: string;
    tmp: string;
    home: string;
    defaults: Record<string, string>;
    codebuild: Record<string, string>;
    /** The server's environment (LocalJobRunnerOptions.env). */
    server: NodeJS.ProcessEnv;
    /** Directory holding the simulate stand-ins (`sam`, `aws`). */
    simulateBin: string;
    dataDir: string;
  },
): NodeJS.ProcessEnv {
  const server = paths.server;
  const pick = (names: string[], prefixes: string[]) =>
    Object.fromEntries(
      Object.entries(server).filter(
        ([name, value]) =>
          value !== undefined && (names.includes(name) || prefixes.some((prefix) => name.startsWith(prefix))),
      ),
    ) as Record<string, string>;
  const env: Record<string, string> = { ...pick(INHERITED, INHERITED_PREFIXES) };
  const region =
    server.AWS_REGION ??
    server.AWS_DEFAULT_REGION ??
    record.environmentVariables.TARGET_REGION ??
    'us-east-1';
  if (job.job === 'deploy') {
    Object.assign(env, pick(SOURCE_CHAIN, SOURCE_CHAIN_PREFIXES));
    // The helper's source: the user's own config and profile, saved before the job's AWS_CONFIG_FILE override.
    env.CROSSDEPLOY_SOURCE_AWS_CONFIG_FILE = server.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config');
    env.CROSSDEPLOY_SOURCE_AWS_PROFILE = server.AWS_PROFILE ?? server.AWS_DEFAULT_PROFILE ?? '';
    // The chain also lives under the user's HOME (credentials file, SSO cache) and may be the instance
    // profile: the helper alone gets both back; sam deploy and everything else run with the job's.
    env.CROSSDEPLOY_SOURCE_HOME = server.HOME ?? homedir();
    env.CROSSDEPLOY_SOURCE_AWS_EC2_METADATA_DISABLED = server.AWS_EC2_METADATA_DISABLED ?? '';
  } else {
    // `sam build` may run repository code: like the build project's role, it gets no way into AWS accounts.
    env.AWS_CONFIG_FILE = '/dev/null';
    env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
  }
  // pyenv's shims find their versions through HOME unless PYENV_ROOT says where.
  const pyenv = join(server.HOME ?? homedir(), '.pyenv');
  if (env.PYENV_ROOT === undefined && existsSync(pyenv)) env.PYENV_ROOT = pyenv;
  if (record.runner === 'simulate') {
    env.PATH = `${paths.simulateBin}:${env.PATH ?? '/usr/bin:/bin'}`;
    env.CROSSDEPLOY_SIMULATE_NODE = process.execPath;
    env.CROSSDEPLOY_SIMULATE_TEMPLATE_JSON = TEMPLATE_JSON;
    env.CROSSDEPLOY_SIMULATE_CHANGE_SETS = simulatedChangeSetsDir(paths.dataDir);
  }
  return {
    ...paths.defaults,
    ...env,
    ...job.environmentVariables,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    TMPDIR: paths.tmp,
    HOME: paths.home,
    // No instance metadata: a job on an EC2 host or in a container must not pick up its role by default.
    AWS_EC2_METADATA_DISABLED: 'true',
    CROSSDEPLOY_LOCAL_ARTIFACTS_DIR: join(paths.dataDir, 'artifacts'),
    CODEBUILD_BUILD_ID: record.buildId,
    CODEBUILD_BUILD_ARN: buildArn(record.buildId, region),
    CODEBUILD_INITIATOR: 'crossdeploy-local',
    CODEBUILD_START_TIME: String(Date.parse(record.startedAt)),
    CODEBUILD_SRC_DIR: paths.src,
    ...paths.codebuild,
    // Inherited by everything the job starts: how a restart finds a job that died before its pgid was recorded.
    [JOB_MARKER]: record.buildId,
  };
}

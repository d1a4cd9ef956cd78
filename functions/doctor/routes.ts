import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { boolean, config, maxLength, minLength, optional, strictObject, string } from 'zod/mini';
import { en } from 'zod/v4/locales';
import { RequestRejectedError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import type { Clock } from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { describeRequester, mayDeploy } from '#shared/registry/requester.ts';
import type { Requester } from '#shared/types.ts';
import { errorResponse } from '../api/problem.ts';
import type { DoctorOptions, DoctorTarget } from './checks.ts';
import { continueDoctor, runDoctor } from './core.ts';
import type { DoctorProbe, DoctorReport, DoctorRunStore } from './ports.ts';

/**
 * The doctor's HTTP routes: `POST /doctor/runs` starts a run, `GET /doctor/runs/{id}` polls it. Started, then
 * polled: the quick checks finish within the POST, drift detection (minutes) goes on and each poll advances
 * it. The Lambda handler serves these routes as the deployer role; local mode serves them with the user's
 * credentials. Errors become problem+json in the API's one place (../api/problem.ts).
 */

export interface DoctorApiDeps {
  registry: Registry;
  store: DoctorRunStore;
  probeFor: (target: DoctorTarget) => DoctorProbe;
  clock: Clock;
  newId: () => string;
  mode: 'api' | 'local';
  /** The API's principal: the deployer role, which deploy roles trust. */
  expectedCallerRoleArn?: string;
  /** The deploy job's role, which the deploy role must trust too (its trust policy is read and checked). */
  deployJobRoleArn?: string;
  isSimulated?: (target: DoctorTarget) => boolean;
  /** The orchestrator's account, to which bare role-name rules are bound (absent in local mode). */
  orchestratorAccount?: string;
}

export type DoctorApi = (
  event: APIGatewayProxyEventV2,
  requester: Requester,
) => Promise<APIGatewayProxyStructuredResultV2>;

const RUN_ID = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_BODY_BYTES = 4096;

config(en());

const startRequest = strictObject({
  application: string().check(minLength(1), maxLength(63)),
  environment: string().check(minLength(1), maxLength(63)),
  drift: optional(boolean()),
});

export function createDoctorApi(deps: DoctorApiDeps): DoctorApi {
  const optionsFor = (
    runId: string,
    requester: Requester,
    target: DoctorTarget,
    drift: boolean,
  ): DoctorOptions => ({
    runId,
    requester,
    mode: deps.mode,
    clock: deps.clock,
    drift,
    ...(deps.expectedCallerRoleArn ? { expectedCallerRoleArn: deps.expectedCallerRoleArn } : {}),
    ...(deps.deployJobRoleArn ? { deployJobRoleArn: deps.deployJobRoleArn } : {}),
    ...(deps.isSimulated?.(target) ? { simulated: true } : {}),
  });

  function targetOf(application: string, environment: string): DoctorTarget {
    const found = findTarget(deps.registry, application, environment);
    if (!found) {
      const appKnown = Object.hasOwn(deps.registry.applications, application);
      throw new RequestRejectedError(
        appKnown ? 'UNKNOWN_ENVIRONMENT' : 'UNKNOWN_APPLICATION',
        404,
        appKnown
          ? `${application} has no environment ${JSON.stringify(environment)}`
          : `no application ${JSON.stringify(application)} in the registry`,
      );
    }
    return { application, environment, env: found.env };
  }

  async function start(event: APIGatewayProxyEventV2, requester: Requester) {
    const contentType = (header(event, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (contentType !== 'application/json') {
      throw new RequestRejectedError('UNSUPPORTED_MEDIA_TYPE', 415, 'the body must be application/json');
    }
    const raw = event.body
      ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8')
      : Buffer.alloc(0);
    if (raw.byteLength > MAX_BODY_BYTES) {
      throw new RequestRejectedError(
        'PAYLOAD_TOO_LARGE',
        413,
        `the body may be at most ${MAX_BODY_BYTES} bytes`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new RequestRejectedError('MALFORMED_REQUEST', 400, 'the body is not valid JSON');
    }
    const parsed = startRequest.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join('.') || undefined;
      throw new RequestRejectedError(
        'INVALID_FIELD',
        400,
        `${field ?? 'body'}: ${issue?.message ?? 'invalid'}`,
        {
          ...(field ? { details: { field } } : {}),
        },
      );
    }
    const target = targetOf(parsed.data.application, parsed.data.environment);
    // The doctor prints role ARNs and policy statements: only those who may deploy there may ask.
    if (!mayDeploy(requester, target.env, { orchestratorAccount: deps.orchestratorAccount })) {
      throw new RequestRejectedError(
        'FORBIDDEN',
        403,
        `${describeRequester(requester)} may not deploy ${target.application}/${target.environment}, so may not run its doctor`,
      );
    }
    const runId = deps.newId();
    const options = optionsFor(runId, requester, target, parsed.data.drift === true);
    const report = await runDoctor(target, deps.probeFor(target), options);
    await deps.store.put({ report, requester });
    logger.info('doctor run', {
      runId,
      application: target.application,
      environment: target.environment,
      targetAccount: target.env.accountId,
      status: report.status,
      failed: report.checks.filter((c) => c.status === 'failed').map((c) => c.id),
      requester: describeRequester(requester),
    });
    return json(202, view(report), { location: `/doctor/runs/${runId}` });
  }

  async function poll(id: string, requester: Requester) {
    const run = RUN_ID.test(id) ? await deps.store.get(id) : undefined;
    const found = run ? findTarget(deps.registry, run.report.application, run.report.environment) : undefined;
    // Someone not allowed on the environment learns nothing, not even that the run exists.
    if (
      !run ||
      !found ||
      !mayDeploy(requester, found.env, { orchestratorAccount: deps.orchestratorAccount })
    ) {
      throw new RequestRejectedError('NOT_FOUND', 404, `no doctor run ${JSON.stringify(id)}`);
    }
    let report = run.report;
    if (report.status === 'running') {
      const target = { application: report.application, environment: report.environment, env: found.env };
      report = await continueDoctor(
        report,
        target,
        deps.probeFor(target),
        optionsFor(id, run.requester, target, true),
      );
      if (report.updatedAt !== run.report.updatedAt)
        await deps.store.put({ report, requester: run.requester });
    }
    return json(200, view(report));
  }

  return async (event, requester) => {
    try {
      const { method, path } = routeOf(event);
      if (path === '/doctor/runs' && method === 'POST') return await start(event, requester);
      const id = /^\/doctor\/runs\/([^/]+)$/.exec(path)?.[1];
      if (id !== undefined && method === 'GET') return await poll(decodeURIComponent(id), requester);
      throw new RequestRejectedError('NOT_FOUND', 404, 'no such route');
    } catch (error) {
      return errorResponse(error, { requestId: event.requestContext?.requestId ?? '' });
    }
  };
}

/** Sends `/doctor/...` to the doctor and everything else to `api` (local mode serves both on one port). */
export function withDoctorRoutes<A extends DoctorApi>(api: A, doctor: DoctorApi): A {
  return (async (event, requester) =>
    isDoctorPath(event) ? doctor(event, requester) : api(event, requester)) as A;
}

const isDoctorPath = (event: APIGatewayProxyEventV2) => routeOf(event).path.startsWith('/doctor/');

function routeOf(event: APIGatewayProxyEventV2): { method: string; path: string } {
  const method = (event.requestContext?.http?.method ?? '').toUpperCase();
  let path = (event.rawPath || event.requestContext?.http?.path || '/').replace(/\/+$/, '') || '/';
  const stage = event.requestContext?.stage;
  if (stage && stage !== '$default' && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
  return { method, path };
}

/** The report as the API shows it: what continues a run (a detection id) is the server's business. */
function view(report: DoctorReport): Omit<DoctorReport, 'pending'> {
  const { pending: _pending, ...shown } = report;
  return shown;
}

function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) return value;
  }
  return undefined;
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { decide, MAX_DECISION_REASON } from '#shared/deployments/approval.ts';
import {
  type Attribution,
  acceptRequest,
  attributeRequest,
  type Intake,
  printable,
  refuseRequest,
} from '#shared/deployments/intake.ts';
import type { SimulationCheck } from '#shared/deployments/record.ts';
import { type DeploymentKind, type ValidRequest, validateByKind } from '#shared/deployments/validation.ts';
import {
  CrossdeployError,
  IdempotencyConflictError,
  isTransientError,
  RequestRejectedError,
} from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import type {
  Clock,
  CommitTimes,
  DeploymentStore,
  LogReader,
  TaskTokens,
  WorkflowStarter,
} from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { describeRequester, mayRead, type RuleScope } from '#shared/registry/requester.ts';
import type { Deployment, Requester } from '#shared/types.ts';
import { describeApplications } from './applications.ts';
import { EXPORT_MEDIA_TYPES, type ExportFormat, exportRows, renderExport } from './export.ts';
import { rawBody } from './http.ts';
import { computeMetrics } from './metrics.ts';
import { errorResponse, internalDetail, type ProblemContext, problem, problemResponse } from './problem.ts';

/**
 * The HTTP API core: API Gateway v2 events in, structured results out. The Lambda handler (IAM requester)
 * and local mode (local requester) both call it, so the routes, checks and records exist once.
 */

export interface ApiDeps {
  store: DeploymentStore;
  workflow: WorkflowStarter;
  logs: LogReader;
  registry: Registry;
  clock: Clock;
  newId: () => string;
  maxBodyBytes?: number;
  /** The orchestrator's account, to which bare role-name rules are bound (absent in local mode). */
  orchestratorAccount?: string;
  /** Local mode only: `runner: simulate` requests are recorded as simulated. */
  isSimulated?: SimulationCheck;
  /**
   * Completes a deployment's "Wait For Approval" task (POST /deployments/{id}/approval). The Lambda handler
   * and local mode pass it; an API built without it answers that route with a generic 500.
   */
  tokens?: TaskTokens;
  /** Commit times for lead time; without it GET /metrics says lead time is unavailable. */
  commitTimes?: CommitTimes;
}

export type Api = (
  event: APIGatewayProxyEventV2,
  requester: Requester,
) => Promise<APIGatewayProxyStructuredResultV2>;

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
export const HISTORY_LIMIT = { min: 1, max: 100, default: 20 } as const;
export const LOGS_LIMIT = { min: 1, max: 1000, default: 200 } as const;
/** Metrics and export windows: 30 days unless asked, at most a year (a Query per page, never a Scan). */
export const WINDOW = { defaultDays: 30, maxDays: 366 } as const;
/** More deployments than this in a window is a 400 that asks for a narrower window, never a cut-off answer. */
export const METRICS_MAX_DEPLOYMENTS = 5000;
export const EXPORT_MAX_DEPLOYMENTS = 500;
const EXPORT_CONCURRENCY = 8;

/** Ids we issue are ULIDs; anything far from that cannot name a deployment, so it is a plain 404. */
const DEPLOYMENT_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** Both cursors we issue (history and logs) are base64url; checking the alphabet keeps junk away from the store. */
const CURSOR = /^[A-Za-z0-9_-]{1,4096}={0,2}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

interface RequestContext {
  event: APIGatewayProxyEventV2;
  requester: Requester;
  requestId: string;
}

type Result = APIGatewayProxyStructuredResultV2;
type RouteHandler = (ctx: RequestContext, id: string) => Promise<Result>;

export function createApi(deps: ApiDeps): Api {
  const { store, logs, registry, clock, newId } = deps;
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const scope: RuleScope = { orchestratorAccount: deps.orchestratorAccount };

  const routes: Record<string, RouteHandler> = {
    'POST /deployments': (ctx) => postRequest(ctx, 'deploy'),
    'POST /promotions': (ctx) => postRequest(ctx, 'promotion'),
    'POST /rollbacks': (ctx) => postRequest(ctx, 'rollback'),
    'GET /deployments': (ctx) => getHistory(ctx),
    'GET /deployments/{id}': (ctx, id) => getDeployment(ctx, id),
    'GET /deployments/{id}/events': (ctx, id) => getEvents(ctx, id),
    'GET /deployments/{id}/follow': (ctx, id) => getFollow(ctx, id),
    'GET /deployments/{id}/logs': (ctx, id) => getLogs(ctx, id),
    'POST /deployments/{id}/approval': (ctx, id) => postApproval(ctx, id),
    'GET /applications': async () => json(200, describeApplications(registry, clock.now())),
    'GET /metrics': (ctx) => getMetrics(ctx),
  };

  return async (event, requester) => {
    const ctx: RequestContext = { event, requester, requestId: event.requestContext?.requestId ?? '' };
    try {
      const match = matchRoute(event, Object.keys(routes));
      if (!match) {
        return problemResponse(problem('NOT_FOUND', 404, 'no such route', { instance: pathOf(event) }));
      }
      const handle = routes[match.routeKey];
      if (!handle) throw new Error(`route ${match.routeKey} has no handler`);
      return await handle(ctx, match.id);
    } catch (error) {
      return errorResponse(error, { requestId: ctx.requestId });
    }
  };

  // POST /deployments, /promotions, /rollbacks --------------------------------------------------------------

  /** The request's JSON body, or the recorded refusal of a body that is not one (type, size, encoding). */
  async function readJsonBody(ctx: RequestContext): Promise<{ body: unknown } | { refused: Result }> {
    const { event } = ctx;
    const contentType = header(event, 'content-type');
    if (!isJsonContentType(contentType)) {
      return {
        refused: await refuseUnattributed(
          ctx,
          'UNSUPPORTED_MEDIA_TYPE',
          415,
          'the body must be application/json',
          {
            contentType: contentType?.slice(0, 100),
          },
        ),
      };
    }
    const raw = rawBody(event);
    if (raw.byteLength > maxBodyBytes) {
      const detail = `the body may be at most ${maxBodyBytes} bytes`;
      return {
        refused: await refuseUnattributed(ctx, 'PAYLOAD_TOO_LARGE', 413, detail, {
          bodyBytes: raw.byteLength,
        }),
      };
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch {
      return {
        refused: await refuseUnattributed(ctx, 'MALFORMED_REQUEST', 400, 'the body is not valid UTF-8 JSON', {
          bodyBytes: raw.byteLength,
        }),
      };
    }
    return { body };
  }

  /** The three ways to ask for a deployment share one path: body checks, validation, idempotency, intake. */
  async function postRequest(ctx: RequestContext, kind: DeploymentKind): Promise<Result> {
    const { event } = ctx;
    const read = await readJsonBody(ctx);
    if ('refused' in read) return read.refused;
    const { body } = read;

    // From here on the body is readable: a refusal that names an application and environment is recorded.
    const attribution = attributeRequest(kind, body);
    let valid: ValidRequest;
    let key: string | undefined;
    try {
      key = idempotencyKey(event);
      valid = validateByKind[kind](body, ctx.requester, registry, clock.now(), scope);
    } catch (error) {
      return refuse(ctx, error, attribution);
    }

    let deploymentId = newId();
    let replay = false;
    if (key !== undefined) {
      const bodyHash = sha256(`${kind}\n${canonicalJson(body)}`);
      // Keys are scoped to the requester: two callers picking the same key neither collide nor see each other.
      const scopedKey = `${describeRequester(ctx.requester)}\n${key}`;
      const claim = await store.claimIdempotencyKey(
        scopedKey,
        bodyHash,
        deploymentId,
        clock.now().toISOString(),
      );
      if (!claim.claimed) {
        if (claim.bodyHash !== bodyHash) {
          const reused = new IdempotencyConflictError(
            'this Idempotency-Key was already used with a different request body',
            { details: { field: 'Idempotency-Key' } },
          );
          return refuse(ctx, reused, attribution);
        }
        deploymentId = claim.deploymentId;
        replay = true;
        const original = await store.getDeployment(deploymentId);
        // A QUEUED original may be a first attempt that died before starting the workflow: finish it below.
        if (original && original.status !== 'QUEUED') return accepted(original, true);
      }
    }
    return accept(ctx, deploymentId, valid, replay);
  }

  /** Starts the accepted request (the shared intake); safe to repeat for the same id. */
  async function accept(ctx: RequestContext, deploymentId: string, valid: ValidRequest, replay: boolean) {
    const intake = await acceptRequest(deploymentId, valid, ctx.requester, deps, { context: ctx, replay });
    return answer(ctx, intake);
  }

  /** A refusal after the body was read: recorded as REJECTED when it names an application and environment. */
  async function refuse(ctx: RequestContext, error: unknown, attribution: Attribution | undefined) {
    return answer(ctx, await refuseRequest(error, attribution, ctx.requester, deps, ctx));
  }

  /** The intake's outcome as HTTP. */
  function answer(ctx: RequestContext, intake: Intake): Result {
    switch (intake.outcome) {
      case 'accepted':
        return accepted(intake.deployment, intake.replayed);
      case 'start-failed':
        return problemResponse(
          problem('EXECUTION_FAILED', 500, internalDetail(ctx.requestId), {
            instance: `/deployments/${intake.deploymentId}`,
            deploymentId: intake.deploymentId,
          }),
        );
      case 'unattributed': {
        const { error, named } = intake;
        return refuseUnattributed(ctx, error.code, error.httpStatus, error.message, { ...named }, error);
      }
      case 'rejected': {
        const { error, deployment, recorded } = intake;
        const { deploymentId } = deployment;
        const context: ProblemContext = recorded
          ? { instance: `/deployments/${deploymentId}`, deploymentId }
          : {};
        return problemResponse(
          withField(problem(error.code, error.httpStatus, error.message, context), error),
        );
      }
    }
  }

  /**
   * A refusal that names no application+environment (unreadable body, wrong type, too large, no target):
   * a REJECTED record would need an invented target and pollute history, so the audit is this log line.
   * It never contains the body.
   */
  function refuseUnattributed(
    ctx: RequestContext,
    code: CrossdeployError['code'],
    status: number,
    detail: string,
    facts: Record<string, unknown>,
    error?: CrossdeployError,
  ): Result {
    logger.warn('request refused', {
      audit: 'refused',
      code,
      status,
      detail,
      requester: describeRequester(ctx.requester),
      requestId: ctx.requestId,
      sourceIp: ctx.event.requestContext?.http?.sourceIp,
      ...facts,
    });
    const doc = problem(code, status, detail, { instance: pathOf(ctx.event) });
    return problemResponse(error ? withField(doc, error) : doc);
  }

  // POST /deployments/{id}/approval ---------------------------------------------------------------------

  /**
   * An approver's decision on a deployment waiting for approval. Every refusal (not an approver, their own
   * deployment, nothing waiting) is a problem document and an APPROVAL_REFUSED event on the deployment.
   */
  async function postApproval(ctx: RequestContext, id: string): Promise<Result> {
    if (!DEPLOYMENT_ID.test(id))
      throw new RequestRejectedError('NOT_FOUND', 404, `no deployment ${JSON.stringify(id)}`);
    const read = await readJsonBody(ctx);
    if ('refused' in read) return read.refused;
    const { body } = read;
    const { decision, reason } = (body ?? {}) as { decision?: unknown; reason?: unknown };
    if (decision !== 'approve' && decision !== 'reject') {
      return refuseUnattributed(
        ctx,
        'INVALID_FIELD',
        400,
        'decision must be "approve" or "reject"',
        {},
        fieldError('decision'),
      );
    }
    if (reason !== undefined && typeof reason !== 'string') {
      return refuseUnattributed(
        ctx,
        'INVALID_FIELD',
        400,
        `reason must be a string of at most ${MAX_DECISION_REASON} characters`,
        {},
        fieldError('reason'),
      );
    }
    if (!deps.tokens) throw new Error('this API was built without task tokens: it cannot take decisions');
    const decided = await decide(
      { deploymentId: id, decision, ...(reason !== undefined ? { reason } : {}) },
      ctx.requester,
      { store, registry, tokens: deps.tokens, clock, scope },
    );
    return json(202, {
      deploymentId: decided.deploymentId,
      decision: decided.decision,
      decidedAt: decided.decidedAt,
      links: links(id),
    });
  }

  // GET routes -----------------------------------------------------------------------------------------

  async function findDeployment(id: string): Promise<Deployment> {
    const deployment = DEPLOYMENT_ID.test(id) ? await store.getDeployment(id) : undefined;
    if (!deployment) throw new RequestRejectedError('NOT_FOUND', 404, `no deployment ${JSON.stringify(id)}`);
    return deployment;
  }

  /**
   * Reading an environment's deployments, events and logs takes the registry's say-so, as deploying does
   * (mayRead: its readers, or its requesters and approvers). A refusal is a 403 and an audit log line; reads
   * write no record. An application or environment the registry does not know has no readers.
   */
  function checkReader(ctx: RequestContext, application: string, environment: string, deploymentId?: string) {
    const target = findTarget(registry, application, environment);
    if (target && mayRead(ctx.requester, target.env, scope)) return;
    logger.warn('read refused', {
      audit: 'refused',
      code: 'FORBIDDEN',
      status: 403,
      requester: describeRequester(ctx.requester),
      requestId: ctx.requestId,
      sourceIp: ctx.event.requestContext?.http?.sourceIp,
      route: `${ctx.event.requestContext?.http?.method ?? ''} ${pathOf(ctx.event)}`,
      application,
      environment,
      ...(deploymentId !== undefined ? { deploymentId } : {}),
    });
    throw new RequestRejectedError(
      'FORBIDDEN',
      403,
      `the requester may not read the deployments of ${application} in ${environment}`,
    );
  }

  /** A deployment the requester may read (404 when there is none, 403 when it is not theirs to read). */
  async function readableDeployment(ctx: RequestContext, id: string): Promise<Deployment> {
    const deployment = await findDeployment(id);
    checkReader(ctx, deployment.application, deployment.environment, deployment.deploymentId);
    return deployment;
  }

  async function getDeployment(ctx: RequestContext, id: string) {
    return json(200, await readableDeployment(ctx, id));
  }

  async function getEvents(ctx: RequestContext, id: string) {
    await readableDeployment(ctx, id);
    const events = await store.listEvents(id);
    return json(200, { items: events.map(({ type, at, detail }) => ({ type, at, detail })) });
  }

  /**
   * Following a deployment in one request: the record and its events from the cursor on. The cursor holds
   * the time of the newest event the client has; events from FOLLOW_OVERLAP_MS before it are sent again
   * (the client keeps each once), so an event written late by a function whose clock runs behind is not
   * skipped.
   */
  async function getFollow(ctx: RequestContext, id: string) {
    const cursor = cursorParam(ctx.event);
    const after = cursor === undefined ? undefined : followCursorTime(cursor);
    const deployment = await readableDeployment(ctx, id);
    const events = await store.listEvents(id);
    const items = events
      .filter((e) => after === undefined || Date.parse(e.at) >= after - FOLLOW_OVERLAP_MS)
      .map(({ type, at, detail }) => ({ type, at, detail }));
    const newest = events.reduce<string | undefined>(
      (max, e) => (max === undefined || e.at > max ? e.at : max),
      undefined,
    );
    const nextCursor = newest ? Buffer.from(newest).toString('base64url') : cursor;
    return json(200, { deployment, items, ...(nextCursor ? { nextCursor } : {}) });
  }

  async function getLogs(ctx: RequestContext, id: string) {
    const deployment = await readableDeployment(ctx, id);
    const limit = limitParam(ctx.event, LOGS_LIMIT);
    const cursor = cursorParam(ctx.event);
    const page = await withCursor(cursor, () =>
      logs.read(deployment, { limit, ...(cursor !== undefined ? { cursor } : {}) }),
    );
    return json(
      200,
      page.nextCursor ? { items: page.items, nextCursor: page.nextCursor } : { items: page.items },
    );
  }

  async function getHistory(ctx: RequestContext) {
    const application = nameParam(ctx.event, 'application');
    const environment = nameParam(ctx.event, 'environment');
    checkReader(ctx, application, environment);
    const format = exportFormat(ctx.event);
    if (format) return getExport(ctx.event, application, environment, format);
    const limit = limitParam(ctx.event, HISTORY_LIMIT);
    const cursor = cursorParam(ctx.event);
    const page = await withCursor(cursor, () =>
      store.listHistory(application, environment, { limit, ...(cursor !== undefined ? { cursor } : {}) }),
    );
    return json(
      200,
      page.nextCursor ? { items: page.items, nextCursor: page.nextCursor } : { items: page.items },
    );
  }

  /** The audit export (GET /deployments asked for CSV or NDJSON): every event of the window, in time order. */
  async function getExport(
    event: APIGatewayProxyEventV2,
    application: string,
    environment: string,
    format: ExportFormat,
  ) {
    const window = windowParams(event, clock.now());
    const found = await store.listRequestedBetween(application, environment, window, {
      limit: EXPORT_MAX_DEPLOYMENTS,
    });
    if (found.more) throw tooManyInWindow(EXPORT_MAX_DEPLOYMENTS);
    // A few event Queries at a time: 500 one after the other would take much of API Gateway's 30 s.
    const withEvents = [];
    for (let i = 0; i < found.items.length; i += EXPORT_CONCURRENCY) {
      const batch = found.items.slice(i, i + EXPORT_CONCURRENCY);
      withEvents.push(
        ...(await Promise.all(
          batch.map(async (deployment) => ({
            deployment,
            events: await store.listEvents(deployment.deploymentId),
          })),
        )),
      );
    }
    const file = `${application}-${environment}-${window.from.slice(0, 10)}-${window.to.slice(0, 10)}`;
    return {
      statusCode: 200,
      headers: {
        'content-type': EXPORT_MEDIA_TYPES[format],
        'cache-control': 'no-store',
        'content-disposition': `attachment; filename="${file.replace(/[^A-Za-z0-9._-]/g, '_')}.${format}"`,
        vary: 'accept',
      },
      body: renderExport(format, exportRows(withEvents)),
    };
  }

  async function getMetrics(ctx: RequestContext) {
    const application = nameParam(ctx.event, 'application');
    const environment = nameParam(ctx.event, 'environment');
    checkReader(ctx, application, environment);
    const window = windowParams(ctx.event, clock.now());
    const inWindow = await store.listRequestedBetween(application, environment, window, {
      limit: METRICS_MAX_DEPLOYMENTS,
    });
    if (inWindow.more) throw tooManyInWindow(METRICS_MAX_DEPLOYMENTS);
    // A failure near the window's end is restored by a later success: read on until one (a bounded read).
    const failedLast = inWindow.items.filter((d) => !d.dryRun).at(-1)?.status === 'FAILED';
    const now = clock.now().toISOString();
    // Nothing was requested after now: a window that ends in the future has nothing later to read.
    const after =
      failedLast && window.to < now
        ? await store.listRequestedBetween(
            application,
            environment,
            { from: window.to, to: now },
            { limit: 200 },
          )
        : { items: [] };
    const commits = [
      ...new Set(
        inWindow.items.flatMap((d) => {
          const commit = d.buildOutput?.resolvedCommit ?? d.resolvedCommit;
          return d.status === 'SUCCEEDED' && commit && !d.buildOutput?.commitTime ? [commit] : [];
        }),
      ),
    ];
    const commitTimes = deps.commitTimes
      ? await deps.commitTimes.lookup(application, commits)
      : new Map<string, string>();
    return json(
      200,
      computeMetrics({
        application,
        environment,
        window,
        inWindow: inWindow.items,
        after: after.items,
        commitTimes,
        ...(deps.commitTimes
          ? {}
          : {
              leadTimeUnavailable:
                'no commit times recorded for the successful deployments in the window (built before the build job exported them; docs/metrics.md)',
            }),
      }),
    );
  }
}

// Helpers --------------------------------------------------------------------------------------------

/** CSV or NDJSON when the client asks for it (Accept, or `format=` for a plain link); otherwise JSON history. */
function exportFormat(event: APIGatewayProxyEventV2): ExportFormat | undefined {
  const format = query(event, 'format');
  if (format !== undefined) {
    if (format === 'csv' || format === 'ndjson') return format;
    throw new RequestRejectedError('INVALID_FIELD', 400, 'format must be csv or ndjson', {
      details: { field: 'format' },
    });
  }
  const accept = (header(event, 'accept') ?? '').toLowerCase();
  const types = accept.split(',').map((part) => part.split(';')[0]?.trim());
  if (types.includes('application/json') || types.includes('*/*') || accept === '') return undefined;
  if (types.includes('text/csv')) return 'csv';
  if (types.includes('application/x-ndjson')) return 'ndjson';
  return undefined;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function timeParam(event: APIGatewayProxyEventV2, name: string): Date | undefined {
  const value = query(event, name);
  if (value === undefined) return undefined;
  const time = DATE_TIME.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(time.getTime())) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      `${name} must be a date (2026-12-01) or an RFC 3339 date-time with a zone`,
      { details: { field: name } },
    );
  }
  return time;
}

/** [from, to): `to` defaults to now, `from` to 30 days before `to`. */
function windowParams(event: APIGatewayProxyEventV2, now: Date): { from: string; to: string } {
  const to = timeParam(event, 'to') ?? now;
  const from = timeParam(event, 'from') ?? new Date(to.getTime() - WINDOW.defaultDays * 86_400_000);
  if (from >= to) {
    throw new RequestRejectedError('INVALID_FIELD', 400, 'from must be before to', {
      details: { field: 'from' },
    });
  }
  if (to.getTime() - from.getTime() > WINDOW.maxDays * 86_400_000) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      `the window may span at most ${WINDOW.maxDays} days`,
      {
        details: { field: 'from' },
      },
    );
  }
  return { from: from.toISOString(), to: to.toISOString() };
}

function tooManyInWindow(max: number) {
  return new RequestRejectedError(
    'INVALID_FIELD',
    400,
    `the window holds more than ${max} deployments: narrow it with from and to`,
    { details: { field: 'from' } },
  );
}

function links(deploymentId: string) {
  const self = `/deployments/${deploymentId}`;
  return { self, events: `${self}/events`, logs: `${self}/logs` };
}

function accepted(deployment: Deployment, replayed: boolean): Result {
  const body = {
    deploymentId: deployment.deploymentId,
    status: deployment.status,
    application: deployment.application,
    environment: deployment.environment,
    ...(deployment.ref !== undefined ? { ref: deployment.ref } : {}),
    kind: deployment.kind ?? 'deploy',
    ...(deployment.source !== undefined ? { source: deployment.source } : {}),
    ...(deployment.rollbackOf !== undefined ? { rollbackOf: deployment.rollbackOf } : {}),
    dryRun: deployment.dryRun,
    ...(deployment.simulated ? { simulated: true } : {}),
    links: links(deployment.deploymentId),
  };
  return json(202, body, {
    location: body.links.self,
    ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
  });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Result {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

function fieldError(field: string): CrossdeployError {
  return new RequestRejectedError('INVALID_FIELD', 400, '', { details: { field } });
}

function withField<T extends { field?: string }>(doc: T, error: CrossdeployError): T {
  const field = error.details.field;
  return typeof field === 'string' && field !== '' ? { ...doc, field } : doc;
}

function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  // API Gateway lower-cases header names; local callers may not.
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) return value;
  }
  return undefined;
}

function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const [type, ...params] = value.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return false;
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replaceAll('"', '');
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

function idempotencyKey(event: APIGatewayProxyEventV2): string | undefined {
  const key = header(event, 'idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      'Idempotency-Key must be 1 to 255 visible ASCII characters',
      { details: { field: 'Idempotency-Key' } },
    );
  }
  return key;
}

/** JSON with object keys sorted at every level: the same request always hashes the same. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function query(event: APIGatewayProxyEventV2, name: string): string | undefined {
  if (event.queryStringParameters) return event.queryStringParameters[name] ?? undefined;
  if (!event.rawQueryString) return undefined;
  return new URLSearchParams(event.rawQueryString).get(name) ?? undefined;
}

function nameParam(event: APIGatewayProxyEventV2, name: string): string {
  const value = query(event, name);
  if (!printable(value, 63)) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      `query parameter ${name} is required (1 to 63 characters)`,
      {
        details: { field: name },
      },
    );
  }
  return value;
}

function limitParam(
  event: APIGatewayProxyEventV2,
  bounds: { min: number; max: number; default: number },
): number {
  const value = query(event, 'limit');
  if (value === undefined) return bounds.default;
  const limit = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!(limit >= bounds.min && limit <= bounds.max)) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      `limit must be an integer from ${bounds.min} to ${bounds.max}`,
      { details: { field: 'limit' } },
    );
  }
  return limit;
}

const badCursor = () => new RequestRejectedError('BAD_CURSOR', 400, 'the cursor is not one this API issued');

/** How far before its cursor a follow request looks again: more than any clock skew between functions. */
export const FOLLOW_OVERLAP_MS = 5_000;

/** A follow cursor is the base64url of an event's ISO time; anything else is not one this API issued. */
function followCursorTime(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const time = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(text) || Number.isNaN(time)) throw badCursor();
  return time;
}

function cursorParam(event: APIGatewayProxyEventV2): string | undefined {
  const cursor = query(event, 'cursor');
  if (cursor === undefined) return undefined;
  if (!CURSOR.test(cursor)) throw badCursor();
  return cursor;
}

/**
 * Cursors are opaque, so whatever the store or reader throws while following one (a refused decode, DynamoDB
 * rejecting a forged start key, CloudWatch rejecting a token) is the cursor's fault — unless the failure is
 * plainly transient or ours, which stays a 5xx so the client retries instead of dropping its place.
 */
async function withCursor<T>(cursor: string | undefined, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    // A missing error value is not the cursor's fault either.
    if (cursor === undefined || error instanceof CrossdeployError || !error || isTransientError(error))
      throw error;
    logger.warn('cursor refused by the store', { error });
    throw badCursor();
  }
}

// Routing --------------------------------------------------------------------------------------------

function pathOf(event: APIGatewayProxyEventV2): string {
  return event.rawPath || event.requestContext?.http?.path || '/';
}

/**
 * API Gateway names the matched route in `routeKey` and fills `pathParameters`; local mode (and a `$default`
 * catch-all) do not, so the path is matched too. A named stage prefixes rawPath with the stage name.
 */
function matchRoute(
  event: APIGatewayProxyEventV2,
  routeKeys: string[],
): { routeKey: string; id: string } | undefined {
  if (routeKeys.includes(event.routeKey)) {
    return { routeKey: event.routeKey, id: event.pathParameters?.id ?? '' };
  }
  const method = (event.requestContext?.http?.method ?? '').toUpperCase();
  let path = pathOf(event).replace(/\/+$/, '') || '/';
  const stage = event.requestContext?.stage;
  if (stage && stage !== '$default' && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
  const segments = path.split('/').slice(1);
  for (const routeKey of routeKeys) {
    const [routeMethod, template = ''] = routeKey.split(' ');
    if (routeMethod !== method) continue;
    const parts = template.split('/').slice(1);
    if (parts.length !== segments.length) continue;
    let id = '';
    const matches = parts.every((part, i) => {
      const segment = segments[i] ?? '';
      if (part !== '{id}') return part === segment;
      try {
        id = decodeURIComponent(segment);
      } catch {
        return false;
      }
      return id !== '';
    });
    if (matches) return { routeKey, id };
  }
  return undefined;
}

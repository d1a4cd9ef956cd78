import type { z } from 'zod';
import { didYouMean, type RequestCommand, type RunCommand } from './args.ts';
import type { Context } from './context.ts';
import { doctor } from './doctor.ts';
import { ApiError, ConnectionError, EXIT, type ExitCode } from './errors.ts';
import { colorEnabled, type Paint, painter, type StreamLike } from './format.ts';
import {
  clean,
  createProgressView,
  formatStep,
  isFinal,
  isSuccess,
  type ProgressView,
  SIMULATED,
} from './progress.ts';
import {
  type AcceptedView,
  acceptedSchema,
  applicationsSchema,
  type DeploymentView,
  decisionSchema,
  deploymentSchema,
  type EventView,
  eventListSchema,
  followSchema,
  historySchema,
  logPageSchema,
  metricsSchema,
} from './schemas.ts';
import {
  indent,
  renderApplications,
  renderHistory,
  renderLogLine,
  renderMetrics,
  renderStatus,
} from './views.ts';

/** One function per command: talk to the API through `Client`, print through the context's streams. */

export type { Context } from './context.ts';

/** The retry interval while the server cannot be reached, and the step of the final polls. */
export const POLL_INTERVAL_MS = 500;

/**
 * How long `--wait` waits before its next follow request (one GET per poll): 1 s for the first 10 s of
 * following; after that 1 s, doubling with each poll that brings no change, up to 5 s; a change starts
 * again at 1 s. A change shows within the current interval; a deployment that stands still (a build, a
 * deploy job) costs one request per 5 s. bench/watch.ts prices a watched deployment with this same policy.
 */
export function createFollowBackoff(startedAt: number) {
  let quietPolls = 0;
  return {
    /** The wait after a poll at `now` that did (or did not) bring a change. */
    next(now: number, changed: boolean): number {
      if (now - startedAt < 10_000) return 1_000;
      quietPolls = changed ? 0 : quietPolls + 1;
      return Math.min(5_000, 1_000 * 2 ** Math.max(0, quietPolls - 1));
    },
  };
}
const LOG_POLL_INTERVAL_MS = 1000;
/** How long `--wait` rides out an unreachable or failing server (a restart, a network blip). */
const POLL_GRACE_MS = 30_000;
/** Release Lock runs just after the result is recorded; this long is waited for it to show. */
const RELEASE_GRACE_MS = 1500;
/** Polls after the record is final, for its last events (bounded even when the clock stands still). */
const MAX_FINAL_POLLS = 6;
const TICK_MS = 100;
const LOG_PAGE_LIMIT = 500;

export async function run(ctx: Context, command: RunCommand): Promise<ExitCode> {
  try {
    return await dispatch(ctx, command);
  } catch (error) {
    if (error instanceof ApiError) error.hint = await hintFor(ctx, command, error);
    throw error;
  }
}

function dispatch(ctx: Context, command: RunCommand): Promise<ExitCode> {
  switch (command.name) {
    case 'deploy':
    case 'promote':
    case 'rollback':
      return request(ctx, command);
    case 'status':
      return status(ctx, command.id);
    case 'history':
      return history(ctx, command);
    case 'logs':
      return logs(ctx, command.id, command.follow);
    case 'approve':
    case 'reject':
      return decideApproval(ctx, command);
    case 'metrics':
      return metrics(ctx, command);
    case 'console':
      // Served by main (it needs the signing setup, not the JSON client): never reaches here.
      throw new Error('crossdeploy console is served by main');
    case 'apps':
      return apps(ctx);
    case 'doctor':
      return doctor(ctx, command);
  }
}

/**
 * What to try after a refusal: the closest registered name for one the API does not know (from
 * GET /applications, the list the caller may read anyway), or `promote` for an environment that takes no ref.
 */
async function hintFor(ctx: Context, command: RunCommand, error: ApiError): Promise<string | undefined> {
  const { code } = error.problem;
  if (code === 'REF_NOT_ALLOWED' && command.name === 'deploy') {
    const { application, environment } = command;
    return `${environment} takes builds by promotion: crossdeploy promote ${application} <from> ${environment} (the registry's promoteFrom names <from>)`;
  }
  // Reads of a target the registry lacks are refused as FORBIDDEN (it has no readers): a typo looks the same.
  const unknownRead = code === 'FORBIDDEN' && command.name === 'history';
  if (code !== 'UNKNOWN_APPLICATION' && code !== 'UNKNOWN_ENVIRONMENT' && !unknownRead) return undefined;
  if (!('application' in command)) return undefined;
  let list: z.infer<typeof applicationsSchema>;
  try {
    list = applicationsSchema.parse((await ctx.client.get('/applications')).body);
  } catch {
    return undefined;
  }
  const app = list.items.find((item) => item.name === command.application);
  if (!app) {
    const hint = didYouMean(
      command.application,
      list.items.map((item) => item.name),
    );
    return hint ? `no application ${JSON.stringify(command.application)}${hint}` : undefined;
  }
  const environments = app.environments.map((env) => env.name);
  const asked = command.name === 'promote' ? [command.from, command.to] : [command.environment];
  for (const name of asked) {
    if (environments.includes(name)) continue;
    const hint = didYouMean(name, environments);
    if (hint) return `no environment ${JSON.stringify(name)}${hint}`;
  }
  return undefined;
}

function parse<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const at = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new ConnectionError(
      `unexpected answer to ${what}${at}: ${issue?.message ?? 'invalid'} — is --url pointing at a crossdeploy API?`,
    );
  }
  return result.data;
}

const writeJson = (stream: StreamLike, value: unknown) => stream.write(`${JSON.stringify(value, null, 2)}\n`);
const writeLines = (stream: StreamLike, lines: readonly string[]) => {
  if (lines.length > 0) stream.write(`${lines.join('\n')}\n`);
};
const paintFor = (ctx: Context, stream: StreamLike): Paint => painter(colorEnabled(stream, ctx.env));
const deploymentPath = (id: string) => `/deployments/${encodeURIComponent(id)}`;

// deploy, promote, rollback -----------------------------------------------------------------------------

/** The route, body and wording of each way to ask for a deployment; the rest of the flow is shared. */
function describeRequest(command: RequestCommand) {
  const common = {
    ...(command.reason !== undefined ? { reason: command.reason } : {}),
    ...(command.dryRun ? { dryRun: true } : {}),
    ...(command.overrideFreeze ? { overrideFreeze: true } : {}),
  };
  const dry = command.dryRun ? ['dry run'] : [];
  switch (command.name) {
    case 'deploy': {
      const { application, environment, ref } = command;
      return {
        path: '/deployments',
        body: { application, environment, ...(ref !== undefined ? { ref } : {}), ...common },
        title: (_accepted: AcceptedView) =>
          withDetails(`deploying ${application}/${environment}`, [ref && `ref ${ref}`, ...dry]),
        summary: (accepted: AcceptedView) => [
          `${application}/${environment}`,
          accepted.ref !== undefined && `ref ${accepted.ref}`,
        ],
      };
    }
    case 'promote': {
      const { application, from, to } = command;
      return {
        path: '/promotions',
        body: { application, from, to, ...common },
        title: (accepted: AcceptedView) =>
          withDetails(`promoting ${application} ${from} → ${to}`, [sourceRelease(accepted), ...dry]),
        summary: (accepted: AcceptedView) => [
          `${application}/${to}`,
          `promotion from ${sourceRelease(accepted) ?? from}`,
        ],
      };
    }
    case 'rollback': {
      const { application, environment, release } = command;
      return {
        path: '/rollbacks',
        body: { application, environment, release, ...common },
        title: (_accepted: AcceptedView) =>
          withDetails(`rolling back ${application}/${environment} to release ${release}`, dry),
        summary: (_accepted: AcceptedView) => [
          `${application}/${environment}`,
          `rollback of release ${release}`,
        ],
      };
    }
  }
}

/** `staging release 7`: what a promotion deploys, as the API chose it when it accepted the request. */
const sourceRelease = (accepted: AcceptedView) =>
  accepted.source?.release !== undefined
    ? `${accepted.source.environment} release ${accepted.source.release}`
    : undefined;
const withDetails = (text: string, details: (string | false | undefined)[]) => {
  const shown = details.filter(Boolean).join(', ');
  return shown ? `${text} (${shown})` : text;
};

async function request(ctx: Context, command: RequestCommand): Promise<ExitCode> {
  const { path, body, title, summary } = describeRequest(command);
  // The key makes the client's retry of a POST (after a reset connection or a 503) start nothing twice.
  const response = await ctx.client.post(path, body, { 'idempotency-key': ctx.newIdempotencyKey() });
  const accepted = parse(acceptedSchema, response.body, `POST ${path}`);
  const id = accepted.deploymentId;

  if (!command.wait) {
    if (ctx.globals.json) {
      writeJson(ctx.stdout, response.body);
    } else {
      const details = [
        ...summary(accepted),
        accepted.dryRun === true && 'dry run',
        accepted.simulated === true && SIMULATED,
      ];
      writeLines(ctx.stdout, [
        clean(`deployment ${id} ${accepted.status.toLowerCase()} (${details.filter(Boolean).join(', ')})`),
        `status: ${ctx.client.urlOf(deploymentPath(id))}`,
      ]);
    }
    return EXIT.ok;
  }
  const shown = accepted.simulated === true ? `${title(accepted)} [${SIMULATED}]` : title(accepted);
  return waitFor(ctx, id, clean(shown));
}

async function waitFor(ctx: Context, id: string, title: string): Promise<ExitCode> {
  // With --json, stdout carries only the final document; progress goes to stderr, and only for a person.
  const stream = ctx.globals.json ? ctx.stderr : ctx.stdout;
  const show = !ctx.globals.json || ctx.stderr.isTTY === true;
  const live = stream.isTTY === true && ctx.env.TERM !== 'dumb';
  const paint = paintFor(ctx, stream);
  const view: ProgressView = show ? createProgressView(stream, { live, paint }) : silentView;

  if (show) stream.write(`${live ? paint('bold', title) : title} — deployment ${id}\n`);

  const ticker = live ? setInterval(() => view.tick(ctx.now()), TICK_MS) : undefined;
  const stopListening = ctx.onInterrupt(() => {
    view.finish();
    ctx.stderr.write(`stopped waiting; deployment ${id} goes on: crossdeploy status ${id}\n`);
  });
  let last: {
    deployment: DeploymentView;
    events: EventView[];
    raw: { deployment: unknown; events: unknown[] };
  };
  try {
    let lastContact = ctx.now();
    const follower = createFollower(ctx, id);
    const backoff = createFollowBackoff(ctx.now());
    let changed = false;
    for (;;) {
      try {
        const before = follower.size();
        last = await follower.poll();
        changed = follower.size() !== before || last.deployment.status !== follower.lastStatus;
        follower.lastStatus = last.deployment.status;
        lastContact = ctx.now();
        view.note(undefined);
      } catch (error) {
        if (!isTransient(error) || ctx.now() - lastContact > POLL_GRACE_MS) throw stillRunning(error, id);
        view.note(`lost contact, retrying (${(error as Error).message})`);
        view.tick(ctx.now());
        await ctx.sleep(POLL_INTERVAL_MS);
        continue;
      }
      view.update(last.deployment, last.events, ctx.now());
      if (isFinal(last.deployment.status)) break;
      await ctx.sleep(backoff.next(ctx.now(), changed));
    }
    last = await awaitFinalEvents(ctx, id, last, view, () => follower.poll());
  } finally {
    if (ticker) clearInterval(ticker);
    stopListening();
    view.finish();
  }

  const { deployment, events } = last;
  if (show) {
    const hasResult = events.some((event) => event.type === deployment.status);
    if (!hasResult) {
      // The record is final but its event is missing (written by an older server, or lost): say it anyway.
      const failed = !isSuccess(deployment.status);
      const text = [deployment.status.toLowerCase(), deployment.errorCode, deployment.errorMessage]
        .filter(Boolean)
        .join(': ');
      stream.write(`${formatStep({ mark: failed ? 'fail' : 'ok', text }, live, paint)}\n`);
    }
    if (deployment.changeSet) {
      writeLines(stream, [
        live ? paint('bold', 'change set') : 'change set:',
        ...indent(deployment.changeSet),
      ]);
    }
    const jobStarted = events.some(
      (event) => event.type === 'BUILD_STARTED' || event.type === 'DEPLOY_STARTED',
    );
    if (!isSuccess(deployment.status) && jobStarted) {
      stream.write(`job output: crossdeploy logs ${id}\n`);
    }
  }
  if (ctx.globals.json) {
    writeJson(ctx.stdout, { ...(last.raw.deployment as object), events: last.raw.events });
  }
  return isSuccess(deployment.status) ? EXIT.ok : EXIT.failed;
}

const silentView: ProgressView = { update() {}, tick() {}, note() {}, finish() {} };

async function fetchState(ctx: Context, id: string) {
  const [deploymentResponse, eventsResponse] = await Promise.all([
    ctx.client.get(deploymentPath(id)),
    ctx.client.get(`${deploymentPath(id)}/events`),
  ]);
  const deployment = parse(deploymentSchema, deploymentResponse.body, `GET /deployments/${id}`);
  const events = parse(eventListSchema, eventsResponse.body, `GET /deployments/${id}/events`).items;
  const rawEvents = (eventsResponse.body as { items: unknown[] }).items;
  return { deployment, events, raw: { deployment: deploymentResponse.body, events: rawEvents } };
}

/**
 * Follows a deployment with one request per poll (GET /deployments/{id}/follow): the events arrive from
 * the cursor on, some again (the API's overlap), and are kept once each, in time order.
 */
function createFollower(ctx: Context, id: string) {
  let cursor: string | undefined;
  const seen = new Map<string, { view: EventView; raw: unknown }>();
  const follower = {
    lastStatus: undefined as string | undefined,
    size: () => seen.size,
    async poll(): Promise<Awaited<ReturnType<typeof fetchState>>> {
      const response = await ctx.client.get(`${deploymentPath(id)}/follow`, { cursor });
      const body = parse(followSchema, response.body, `GET /deployments/${id}/follow`);
      const rawItems = (response.body as { items: unknown[] }).items;
      body.items.forEach((event, i) => {
        seen.set(`${event.type}\n${event.at}\n${JSON.stringify(event.detail)}`, {
          view: event,
          raw: rawItems[i],
        });
      });
      if (body.nextCursor) cursor = body.nextCursor;
      const ordered = [...seen.values()].sort((a, b) => a.view.at.localeCompare(b.view.at));
      return {
        deployment: body.deployment,
        events: ordered.map((e) => e.view),
        raw: {
          deployment: (response.body as { deployment: unknown }).deployment,
          events: ordered.map((e) => e.raw),
        },
      };
    },
  };
  return follower;
}

async function awaitFinalEvents(
  ctx: Context,
  id: string,
  state: Awaited<ReturnType<typeof fetchState>>,
  view: ProgressView,
  read: () => Promise<Awaited<ReturnType<typeof fetchState>>> = () => fetchState(ctx, id),
): Promise<Awaited<ReturnType<typeof fetchState>>> {
  const holdsLock = (events: readonly EventView[]) =>
    events.some((e) => e.type === 'LOCK_ACQUIRED' || e.type === 'LOCK_TAKEN_OVER') &&
    !events.some((e) => e.type === 'LOCK_RELEASED');
  // The record turns final just before its outcome event is written, and the two are read in parallel.
  const outcomeMissing = (s: typeof state) => !s.events.some((e) => e.type === s.deployment.status);
  const deadline = ctx.now() + RELEASE_GRACE_MS;
  let current = state;
  for (
    let polls = 0;
    (holdsLock(current.events) || outcomeMissing(current)) && polls < MAX_FINAL_POLLS;
    polls++
  ) {
    if (ctx.now() >= deadline) break;
    await ctx.sleep(POLL_INTERVAL_MS / 2);
    try {
      current = await read();
    } catch {
      // The result is already known; a missing "lock released" line is not worth failing for.
      break;
    }
    view.update(current.deployment, current.events, ctx.now());
  }
  return current;
}

/** Worth another poll: the server may be restarting or a gateway may be briefly unhappy. */
const isTransient = (error: unknown) =>
  error instanceof ConnectionError || (error instanceof ApiError && error.problem.status >= 500);

function stillRunning(error: unknown, id: string): unknown {
  if (error instanceof ConnectionError) {
    return new ConnectionError(
      `${error.message}\ndeployment ${id} may still be running: crossdeploy status ${id}`,
      { cause: error },
    );
  }
  return error;
}

// status -------------------------------------------------------------------------------------------------

async function status(ctx: Context, id: string): Promise<ExitCode> {
  const [deploymentResponse, eventsResponse] = await Promise.all([
    ctx.client.get(deploymentPath(id)),
    ctx.globals.json ? undefined : ctx.client.get(`${deploymentPath(id)}/events`),
  ]);
  const deployment = parse(deploymentSchema, deploymentResponse.body, `GET /deployments/${id}`);
  if (ctx.globals.json) {
    writeJson(ctx.stdout, deploymentResponse.body);
  } else {
    const events = parse(eventListSchema, eventsResponse?.body, `GET /deployments/${id}/events`).items;
    const decorated = colorEnabled(ctx.stdout, ctx.env);
    writeLines(
      ctx.stdout,
      renderStatus(deployment, events, { paint: paintFor(ctx, ctx.stdout), now: ctx.now(), decorated }),
    );
  }
  return !isFinal(deployment.status) || isSuccess(deployment.status) ? EXIT.ok : EXIT.failed;
}

// approve / reject -----------------------------------------------------------------------------------------

/** An approver's decision; a refusal (problem+json) is an ApiError, which the CLI prints and exits 1 on. */
async function decideApproval(
  ctx: Context,
  command: Extract<RunCommand, { name: 'approve' | 'reject' }>,
): Promise<ExitCode> {
  const path = `${deploymentPath(command.id)}/approval`;
  const response = await ctx.client.post(path, {
    decision: command.name,
    ...(command.reason !== undefined ? { reason: command.reason } : {}),
  });
  const decided = parse(decisionSchema, response.body, `POST ${path}`);
  if (ctx.globals.json) {
    writeJson(ctx.stdout, response.body);
  } else {
    const what =
      decided.decision === 'APPROVED'
        ? 'approved: its change set runs next'
        : 'rejected: its change set is deleted, nothing applied';
    writeLines(ctx.stdout, [
      clean(`deployment ${decided.deploymentId} ${what}`),
      `status: ${ctx.client.urlOf(deploymentPath(decided.deploymentId))}`,
    ]);
  }
  return EXIT.ok;
}

// history ------------------------------------------------------------------------------------------------

async function history(ctx: Context, command: Extract<RunCommand, { name: 'history' }>): Promise<ExitCode> {
  const response = await ctx.client.get('/deployments', {
    application: command.application,
    environment: command.environment,
    limit: command.limit,
    cursor: command.cursor,
  });
  const page = parse(historySchema, response.body, 'GET /deployments');
  if (ctx.globals.json) {
    writeJson(ctx.stdout, response.body);
    return EXIT.ok;
  }
  if (page.items.length === 0) {
    ctx.stdout.write(
      `no deployments of ${command.application}/${command.environment}${command.cursor ? ' on this page' : ' yet'}\n`,
    );
  } else {
    writeLines(ctx.stdout, renderHistory(page.items, { paint: paintFor(ctx, ctx.stdout), now: ctx.now() }));
  }
  if (page.nextCursor) {
    // On stderr so the table alone can be piped into other tools.
    const limit = command.limit ? ` --limit ${command.limit}` : '';
    ctx.stderr.write(
      `older: crossdeploy history ${command.application} ${command.environment}${limit} --cursor ${page.nextCursor}\n`,
    );
  }
  return EXIT.ok;
}

// logs ---------------------------------------------------------------------------------------------------

async function logs(ctx: Context, id: string, follow: boolean): Promise<ExitCode> {
  const paint = paintFor(ctx, ctx.stdout);
  let cursor: string | undefined;
  let drained = false;
  let printed = 0;
  const done = () => {
    if (printed === 0 && !ctx.globals.json) ctx.stderr.write(`no job output for deployment ${id} yet\n`);
    return EXIT.ok;
  };
  for (;;) {
    const response = await ctx.client.get(`${deploymentPath(id)}/logs`, { cursor, limit: LOG_PAGE_LIMIT });
    const page = parse(logPageSchema, response.body, `GET /deployments/${id}/logs`);
    const rawItems = (response.body as { items: unknown[] }).items;
    if (ctx.globals.json) {
      // One JSON object per line, so `--follow --json` can be consumed as it arrives.
      for (const item of rawItems) ctx.stdout.write(`${JSON.stringify(item)}\n`);
    } else {
      writeLines(
        ctx.stdout,
        page.items.map((line) => renderLogLine(line, paint)),
      );
    }
    printed += page.items.length;
    // The API drops nextCursor once the deployment is final and everything was read.
    if (!page.nextCursor) return done();
    cursor = page.nextCursor;
    if (page.items.length > 0) continue;
    if (!follow) return done();
    // Caught up. Should a server keep offering a cursor after the end, the record says when to stop.
    if (drained) return done();
    const deployment = parse(
      deploymentSchema,
      (await ctx.client.get(deploymentPath(id))).body,
      `GET /deployments/${id}`,
    );
    if (isFinal(deployment.status)) drained = true;
    else await ctx.sleep(LOG_POLL_INTERVAL_MS);
  }
}

// metrics ------------------------------------------------------------------------------------------------

async function metrics(ctx: Context, command: Extract<RunCommand, { name: 'metrics' }>): Promise<ExitCode> {
  const response = await ctx.client.get('/metrics', {
    application: command.application,
    environment: command.environment,
    from: command.from,
    to: command.to,
  });
  const body = parse(metricsSchema, response.body, 'GET /metrics');
  if (ctx.globals.json) writeJson(ctx.stdout, response.body);
  else writeLines(ctx.stdout, renderMetrics(body));
  return EXIT.ok;
}

// apps ---------------------------------------------------------------------------------------------------

async function apps(ctx: Context): Promise<ExitCode> {
  const response = await ctx.client.get('/applications');
  const body = parse(applicationsSchema, response.body, 'GET /applications');
  if (ctx.globals.json) writeJson(ctx.stdout, response.body);
  else if (body.items.length === 0) ctx.stdout.write('no applications in the registry\n');
  else writeLines(ctx.stdout, renderApplications(body, paintFor(ctx, ctx.stdout)));
  return EXIT.ok;
}

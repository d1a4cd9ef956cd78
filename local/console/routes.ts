import { readFileSync } from 'node:fs';
import type { VNode } from 'preact';
import {
  type Cell,
  type DeploymentRecord,
  deploymentView,
  type EventRecord,
  environmentView,
  errorView,
  FINAL,
  fragment,
  gridView,
  type LogRecord,
  type MetricsRecord,
  page,
  queueView,
} from './views.ts';

/**
 * The read-only web console. Every page is rendered from API calls (`ApiCall`): in local mode the API core
 * in-process with the server's requester, behind `crossdeploy console` the deployed API signed with the
 * user's credentials. So the console reads exactly what its user may read through the API, and it has no
 * route that writes: only GET and HEAD are answered, and it calls only GET routes.
 */

export interface ApiAnswer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export type ApiCall = (
  path: string,
  query?: Record<string, string | undefined>,
  headers?: Record<string, string>,
) => Promise<ApiAnswer>;

export interface ConsoleResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const ASSETS: Record<string, { type: string; file: URL }> = {
  'console.js': {
    type: 'text/javascript; charset=utf-8',
    file: new URL('./assets/console.js', import.meta.url),
  },
  'console.css': { type: 'text/css; charset=utf-8', file: new URL('./assets/console.css', import.meta.url) },
};

/**
 * No inline script or style is allowed, and nothing from another origin: should escaping ever fail, an
 * injected script would still not run. `form-action 'self'` for the metrics window form (a GET).
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const HISTORY_PAGE = 20;
/** The in-flight deployments of an environment are read from its newest records. */
const FLIGHT_WINDOW = 100;

export function isConsolePath(pathname: string): boolean {
  return pathname === '/console' || pathname.startsWith('/console/');
}

export function createConsole(options: { call: ApiCall; now?: () => number }) {
  const { call } = options;
  const now = options.now ?? Date.now;
  const assets = new Map(
    Object.entries(ASSETS).map(([name, asset]) => [
      name,
      { type: asset.type, body: readFileSync(asset.file, 'utf8') },
    ]),
  );

  return async function handle(method: string, url: URL, headers: Record<string, string | undefined>) {
    if (method !== 'GET' && method !== 'HEAD') {
      return {
        statusCode: 405,
        headers: { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'application/problem+json' },
        body: JSON.stringify({
          type: 'https://crossdeploy.dev/problems/method-not-allowed',
          title: 'Method not allowed',
          status: 405,
          detail: 'the console is read-only',
        }),
      };
    }
    const segments = url.pathname.replace(/\/+$/, '').split('/').slice(2).map(decodeSegment);
    const wantsFragment = headers['x-console-fragment'] === '1';
    const [first, ...rest] = segments;
    if (first === 'assets' && rest.length === 1) {
      const asset = assets.get(rest[0] ?? '');
      if (asset)
        return {
          statusCode: 200,
          headers: { ...SECURITY_HEADERS, 'content-type': asset.type },
          body: asset.body,
        };
    }
    if (first === 'export' && rest.length === 0) return exportFile(url);
    let view: { status: number; title: string; body: VNode; live: boolean };
    if (first === undefined) view = await grid();
    else if (first === 'queue' && rest.length === 0) view = await queue();
    else if (first === 'environments' && rest.length === 2)
      view = await environment(rest[0] ?? '', rest[1] ?? '', url);
    else if (first === 'deployments' && rest.length === 1) view = await deployment(rest[0] ?? '');
    else
      view = { status: 404, title: 'Not found', body: errorView(404, 'no such console page'), live: false };
    const body = wantsFragment ? fragment(view.body) : page(view);
    return {
      statusCode: view.status,
      headers: {
        ...SECURITY_HEADERS,
        'content-type': 'text/html; charset=utf-8',
        'x-console-live': String(view.live),
      },
      body,
    };
  };

  interface EnvironmentInfo {
    name: string;
    frozen?: Cell['frozen'];
    nextPromotion?: Cell['nextPromotion'];
  }

  async function apps(): Promise<{ name: string; environments: string[]; info: EnvironmentInfo[] }[]> {
    const answer = await call('/applications');
    if (answer.statusCode !== 200) throw new ConsoleApiError(answer);
    const body = JSON.parse(answer.body) as { items: { name: string; environments: EnvironmentInfo[] }[] };
    return body.items.map((a) => ({
      name: a.name,
      environments: a.environments.map((e) => e.name),
      info: a.environments,
    }));
  }

  async function cellOf(application: string, environment: string): Promise<Cell> {
    const answer = await call('/deployments', { application, environment, limit: String(FLIGHT_WINDOW) });
    if (answer.statusCode === 403)
      return { application, environment, queue: [], refused: 'not yours to read' };
    if (answer.statusCode !== 200) throw new ConsoleApiError(answer);
    return cellFrom(
      application,
      environment,
      (JSON.parse(answer.body) as { items: DeploymentRecord[] }).items,
    );
  }

  async function allCells() {
    const list = await apps();
    const cells = await Promise.all(
      list.flatMap((app) =>
        app.info.map(async (env) => ({
          ...(await cellOf(app.name, env.name)),
          ...(env.frozen ? { frozen: env.frozen } : {}),
          ...(env.nextPromotion ? { nextPromotion: env.nextPromotion } : {}),
        })),
      ),
    );
    return { list, cells };
  }

  async function grid() {
    try {
      const { list, cells } = await allCells();
      return { status: 200, title: 'Environments', body: gridView(list, cells, now()), live: true };
    } catch (error) {
      return failure(error);
    }
  }

  async function queue() {
    try {
      const { cells } = await allCells();
      return { status: 200, title: 'Queue', body: queueView(cells), live: true };
    } catch (error) {
      return failure(error);
    }
  }

  async function environment(application: string, environment: string, url: URL) {
    try {
      const cursor = url.searchParams.get('cursor') ?? undefined;
      const window = { from: dateParam(url, 'from'), to: dateParam(url, 'to') };
      const [historyAnswer, cell, metricsAnswer] = await Promise.all([
        call('/deployments', { application, environment, limit: String(HISTORY_PAGE), cursor }),
        cellOf(application, environment),
        call('/metrics', { application, environment, ...window }),
      ]);
      if (historyAnswer.statusCode !== 200) throw new ConsoleApiError(historyAnswer);
      const history = JSON.parse(historyAnswer.body) as { items: DeploymentRecord[]; nextCursor?: string };
      const metricsOk = metricsAnswer.statusCode === 200;
      return {
        status: 200,
        title: `${application} / ${environment}`,
        body: environmentView({
          application,
          environment,
          history: history.items,
          ...(history.nextCursor ? { nextCursor: history.nextCursor } : {}),
          cell,
          ...(metricsOk
            ? { metrics: JSON.parse(metricsAnswer.body) as MetricsRecord }
            : { metricsError: problemDetail(metricsAnswer) }),
          window,
          now: now(),
        }),
        live: cursor === undefined,
      };
    } catch (error) {
      return failure(error);
    }
  }

  async function deployment(id: string) {
    try {
      const path = `/deployments/${encodeURIComponent(id)}`;
      const record = await call(path);
      if (record.statusCode !== 200) throw new ConsoleApiError(record);
      const d = JSON.parse(record.body) as DeploymentRecord;
      const [events, logs] = await Promise.all([call(`${path}/events`), readLogs(path)]);
      if (events.statusCode !== 200) throw new ConsoleApiError(events);
      return {
        status: 200,
        title: `Deployment ${d.deploymentId}`,
        body: deploymentView({
          deployment: d,
          events: (JSON.parse(events.body) as { items: EventRecord[] }).items,
          logs,
          now: now(),
        }),
        // A final deployment's page no longer changes, except for its last log lines and events: the script
        // takes one more refresh after it reads final, then stops.
        live: !FINAL.has(d.status),
      };
    } catch (error) {
      return failure(error);
    }
  }

  /** Every page of the deployment's job output (the console shows it whole, and refreshes while it runs). */
  async function readLogs(path: string): Promise<LogRecord[]> {
    const lines: LogRecord[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const answer = await call(`${path}/logs`, { limit: '1000', cursor });
      if (answer.statusCode !== 200) return lines;
      const body = JSON.parse(answer.body) as { items: LogRecord[]; nextCursor?: string };
      lines.push(...body.items);
      if (!body.nextCursor || body.items.length === 0) break;
      cursor = body.nextCursor;
    }
    return lines;
  }

  async function exportFile(url: URL): Promise<ConsoleResponse> {
    const format = url.searchParams.get('format') === 'ndjson' ? 'ndjson' : 'csv';
    const answer = await call('/deployments', {
      application: url.searchParams.get('application') ?? undefined,
      environment: url.searchParams.get('environment') ?? undefined,
      from: dateParam(url, 'from'),
      to: dateParam(url, 'to'),
      format,
    });
    const keep = ['content-type', 'content-disposition'];
    return {
      statusCode: answer.statusCode,
      headers: {
        ...SECURITY_HEADERS,
        ...Object.fromEntries(
          Object.entries(answer.headers).filter(([name]) => keep.includes(name.toLowerCase())),
        ),
      },
      body: answer.body,
    };
  }
}

function cellFrom(application: string, environment: string, items: DeploymentRecord[]): Cell {
  const inFlight = items
    .filter((d) => !FINAL.has(d.status))
    .sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  const named = inFlight.find((d) => d.waitingBehind?.reason === 'HOLDS_LOCK')?.waitingBehind?.deploymentId;
  const lockHolder =
    inFlight.find((d) => d.deploymentId === named) ??
    inFlight.find((d) => d.phase === 'DEPLOYING' || d.phase === 'SETTLING');
  const current = items.find((d) => d.status === 'SUCCEEDED' && !d.dryRun);
  return {
    application,
    environment,
    ...(items[0] ? { latest: items[0] } : {}),
    ...(current ? { current } : {}),
    ...(lockHolder ? { lockHolder } : {}),
    queue: inFlight,
  };
}

/** Dates travel to the API as they are (it validates them); only the characters of a date-time pass here. */
function dateParam(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name);
  return value && /^[0-9T:.+Z-]{1,35}$/.test(value) ? value : undefined;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

class ConsoleApiError extends Error {
  readonly answer: ApiAnswer;
  constructor(answer: ApiAnswer) {
    super(problemDetail(answer));
    this.name = 'ConsoleApiError';
    this.answer = answer;
  }
}

function problemDetail(answer: ApiAnswer): string {
  try {
    const problem = JSON.parse(answer.body) as { detail?: unknown };
    if (typeof problem.detail === 'string') return problem.detail;
  } catch {
    // not a problem document
  }
  return `the API answered ${answer.statusCode}`;
}

function failure(error: unknown) {
  if (error instanceof ConsoleApiError) {
    const status = error.answer.statusCode;
    return { status, title: 'Error', body: errorView(status, error.message), live: false };
  }
  throw error;
}

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { render } from 'preact-render-to-string';
import type { Metrics } from '../../functions/api/metrics.ts';

/**
 * The console's pages, rendered on the server with preact + htm: every value lands in a text node or an
 * attribute through preact, which escapes it, so no user-controlled string (a reason, a commit message, a log
 * line) is ever parsed as HTML. Links are built from ids and names through encodeURIComponent only.
 */

export const FINAL = new Set(['SUCCEEDED', 'FAILED', 'REJECTED', 'CANCELLED', 'SUPERSEDED', 'SKIPPED']);

export interface DeploymentRecord {
  deploymentId: string;
  application: string;
  environment: string;
  status: string;
  phase?: string;
  ref?: string;
  resolvedCommit?: string;
  reason?: string;
  requestedAt: string;
  finishedAt?: string;
  release?: number;
  kind?: string;
  dryRun?: boolean;
  simulated?: boolean;
  errorCode?: string;
  errorMessage?: string;
  changeSet?: string;
  requester?: Record<string, unknown>;
  buildOutput?: { sha256?: string; resolvedCommit?: string; versionId?: string };
  waitingBehind?: { deploymentId: string; reason: string };
  rollbackOf?: number;
}

export interface EventRecord {
  type: string;
  at: string;
  detail: Record<string, unknown>;
}

export interface LogRecord {
  job: string;
  at: string;
  message: string;
}

export interface Cell {
  application: string;
  environment: string;
  latest?: DeploymentRecord;
  current?: DeploymentRecord;
  lockHolder?: DeploymentRecord;
  queue: DeploymentRecord[];
  /** Set when the requester may not read this environment (the API said 403). */
  refused?: string;
  frozen?: { window: string; endsAt: string };
  nextPromotion?: { schedule: string; from: string; at: string };
}

/** What GET /metrics answers (functions/api/metrics.ts), as the console reads it. */
export type MetricsRecord = Omit<Metrics, 'application' | 'environment'>;

const enc = encodeURIComponent;
export const deploymentHref = (id: string) => `/console/deployments/${enc(id)}`;
export const environmentHref = (application: string, environment: string) =>
  `/console/environments/${enc(application)}/${enc(environment)}`;

/** The whole document: the shell, and `main`, which the script swaps for a fresh render while it polls. */
export function page(options: { title: string; body: VNode; live: boolean }): string {
  const doc = html`<html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>${options.title} · crossdeploy</title>
      <link rel="stylesheet" href="/console/assets/console.css" />
      <script src="/console/assets/console.js" defer></script>
    </head>
    <body>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <nav aria-label="Console">
          <a href="/console">Environments</a>
          <a href="/console/queue">Queue</a>
        </nav>
        <span class="readonly">read-only</span>
      </header>
      <main id="main" tabindex="-1" data-live=${options.live ? 'true' : 'false'}>${options.body}</main>
    </body>
  </html>`;
  return `<!doctype html>\n${render(doc as VNode)}`;
}

/** Only `main`'s content, for the script's refresh (same escaping, same render). */
export function fragment(body: VNode): string {
  return render(body);
}

// Pieces ------------------------------------------------------------------------------------------------

function status(d: DeploymentRecord | undefined) {
  if (!d) return html`<span class="status none">no deployments</span>`;
  const label = d.status === 'RUNNING' && d.phase ? `RUNNING · ${d.phase}` : d.status;
  return html`<span class=${`status s-${d.status.toLowerCase()}`} data-status=${d.status}>${label}</span>`;
}

const short = (commit: string | undefined) => (commit ? commit.slice(0, 7) : '');
const commitOf = (d: DeploymentRecord) => d.buildOutput?.resolvedCommit ?? d.resolvedCommit;

function time(at: string | undefined) {
  if (!at) return '';
  return html`<time datetime=${at}>${at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

/** "3m ago": computed on the server at render time, refreshed with the page. */
export function age(at: string | undefined, now: number): string {
  if (!at) return '';
  return `${duration((now - Date.parse(at)) / 1000)} ago`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return 'n/a';
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.round(s / 360) / 10}h`;
  return `${Math.round(s / 8640) / 10}d`;
}

function requesterText(r: Record<string, unknown> | undefined): string {
  if (!r) return '';
  switch (r.type) {
    case 'iam':
      return String(r.principal ?? r.arn ?? '');
    case 'slack':
      return `slack:${String(r.teamId)}/${String(r.userName ?? r.userId)}`;
    case 'schedule':
      return `schedule:${String(r.scheduleName)}`;
    case 'local':
      return `local:${String(r.user)}`;
    default:
      return JSON.stringify(r);
  }
}

function deploymentLink(d: DeploymentRecord) {
  return html`<a href=${deploymentHref(d.deploymentId)}>${d.deploymentId}</a>`;
}

// Grid --------------------------------------------------------------------------------------------------

export function gridView(apps: { name: string; environments: string[] }[], cells: Cell[], now: number) {
  const envNames = [...new Set(apps.flatMap((a) => a.environments))];
  const cellOf = (application: string, environment: string) =>
    cells.find((c) => c.application === application && c.environment === environment);
  return html`<h1>Environments</h1>
    <table class="grid">
      <caption>Applications by environment: what runs where, who holds each environment, what waits</caption>
      <thead>
        <tr>
          <th scope="col">Application</th>
          ${envNames.map((e) => html`<th scope="col">${e}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${apps.map(
          (app) => html`<tr>
            <th scope="row">${app.name}</th>
            ${envNames.map((env) => {
              const cell = cellOf(app.name, env);
              if (!app.environments.includes(env) || !cell) return html`<td class="empty">—</td>`;
              return html`<td data-cell=${`${app.name}/${env}`}>${gridCell(cell, now)}</td>`;
            })}
          </tr>`,
        )}
      </tbody>
    </table>`;
}

function gridCell(cell: Cell, now: number) {
  if (cell.refused) return html`<span class="muted">${cell.refused}</span>`;
  const { latest, current } = cell;
  return html`<a class="cell-link" href=${environmentHref(cell.application, cell.environment)}
      >${cell.environment} of ${cell.application}</a
    >
    <div>${status(latest)}</div>
    <dl class="facts">
      <dt>Release</dt>
      <dd>${current?.release !== undefined ? `#${current.release}` : '—'}</dd>
      <dt>Commit</dt>
      <dd><code>${short(current ? commitOf(current) : undefined) || '—'}</code></dd>
      <dt>Age</dt>
      <dd>${current ? age(current.finishedAt, now) : '—'}</dd>
      <dt>Lock</dt>
      <dd>${cell.lockHolder ? deploymentLink(cell.lockHolder) : 'free'}</dd>
      <dt>Queue</dt>
      <dd data-queue-length=${String(cell.queue.length)}>${cell.queue.length}</dd>
      <dt>Frozen</dt>
      <dd data-frozen=${cell.frozen ? 'true' : 'false'}>
        ${cell.frozen ? html`yes, ${cell.frozen.window} until ${time(cell.frozen.endsAt)}` : 'no'}
      </dd>
      <dt>Next promotion</dt>
      <dd>
        ${
          cell.nextPromotion
            ? html`${time(cell.nextPromotion.at)} from ${cell.nextPromotion.from} (${cell.nextPromotion.schedule})`
            : '—'
        }
      </dd>
    </dl>`;
}

// Environment -------------------------------------------------------------------------------------------

export function environmentView(input: {
  application: string;
  environment: string;
  history: DeploymentRecord[];
  nextCursor?: string;
  cell: Cell;
  metrics?: MetricsRecord;
  metricsError?: string;
  window: { from?: string; to?: string };
  now: number;
}) {
  const { application, environment, history, cell } = input;
  const releases = history.filter((d) => d.release !== undefined && d.status === 'SUCCEEDED' && !d.dryRun);
  const rollbackCandidates = releases.filter((d) => d.deploymentId !== cell.current?.deploymentId);
  const here = environmentHref(application, environment);
  const windowQuery = new URLSearchParams(
    Object.entries({ application, environment, ...input.window }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  return html`<h1>${application} / ${environment}</h1>
    <p>${status(cell.latest)} Lock: ${cell.lockHolder ? deploymentLink(cell.lockHolder) : 'free'}</p>
    <section aria-labelledby="queue-h">
      <h2 id="queue-h">Queue</h2>
      ${queueList(cell)}
    </section>
    <section aria-labelledby="metrics-h">
      <h2 id="metrics-h">Delivery metrics</h2>
      <form method="get" action=${here} class="window">
        <label for="from">From</label>
        <input id="from" name="from" type="date" value=${input.window.from?.slice(0, 10) ?? ''} />
        <label for="to">To</label>
        <input id="to" name="to" type="date" value=${input.window.to?.slice(0, 10) ?? ''} />
        <button type="submit">Show</button>
      </form>
      ${input.metrics ? metricsView(input.metrics) : html`<p role="status">${input.metricsError ?? ''}</p>`}
      <p>
        Audit export of this window:${' '}<a href=${`/console/export?${windowQuery}&format=csv`}>CSV</a>${' · '}<a href=${`/console/export?${windowQuery}&format=ndjson`}>NDJSON</a>
      </p>
    </section>
    <section aria-labelledby="history-h">
      <h2 id="history-h">History</h2>
      ${historyTable(history, input.now)}
      ${
        input.nextCursor
          ? html`<p><a href=${`${here}?cursor=${enc(input.nextCursor)}`}>Older deployments</a></p>`
          : null
      }
    </section>
    <section aria-labelledby="releases-h">
      <h2 id="releases-h">Releases and rollback candidates</h2>
      ${
        releases.length === 0
          ? html`<p>No releases on this page.</p>`
          : html`<ul class="releases">
            ${releases.map(
              (d) => html`<li>
                #${d.release} ${deploymentLink(d)} <code>${short(commitOf(d))}</code> ${time(d.finishedAt)}
                ${d.deploymentId === cell.current?.deploymentId ? html`<strong>(current)</strong>` : null}
                ${
                  rollbackCandidates.includes(d)
                    ? html`<span class="muted">rollback: <code>crossdeploy rollback ${application} ${environment} ${d.release}</code></span>`
                    : null
                }
              </li>`,
            )}
          </ul>`
      }
    </section>`;
}

function historyTable(items: DeploymentRecord[], now: number) {
  if (items.length === 0) return html`<p>No deployments yet.</p>`;
  return html`<table class="history">
    <caption class="visually-hidden">Deployments, newest first</caption>
    <thead>
      <tr>
        <th scope="col">Deployment</th>
        <th scope="col">Result</th>
        <th scope="col">Who</th>
        <th scope="col">Why</th>
        <th scope="col">What</th>
        <th scope="col">When</th>
      </tr>
    </thead>
    <tbody>
      ${items.map(
        (d) => html`<tr data-deployment=${d.deploymentId}>
          <td>${deploymentLink(d)}${d.release !== undefined ? html` <span class="muted">#${d.release}</span>` : null}</td>
          <td>${status(d)}${d.errorCode ? html` <code>${d.errorCode}</code>` : null}</td>
          <td>${requesterText(d.requester)}</td>
          <td class="reason">${d.reason ?? ''}</td>
          <td>${d.kind ?? 'deploy'} ${d.ref ?? ''} <code>${short(commitOf(d))}</code>${d.dryRun ? ' (dry run)' : ''}</td>
          <td>${time(d.requestedAt)} <span class="muted">${age(d.requestedAt, now)}</span></td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function queueList(cell: Cell) {
  if (cell.queue.length === 0) return html`<p>Nobody waits.</p>`;
  return html`<ol class="queue" aria-label=${`Queue of ${cell.application} ${cell.environment}`}>
    ${cell.queue.map(
      (d) => html`<li data-waiter=${d.deploymentId}>
        ${deploymentLink(d)} ${status(d)} ${requesterText(d.requester)} <span class="reason">${d.reason ?? ''}</span>
        ${d.deploymentId === cell.lockHolder?.deploymentId ? html` <strong>holds the lock</strong>` : null}
      </li>`,
    )}
  </ol>`;
}

export function queueView(cells: Cell[]) {
  const busy = cells.filter((c) => c.queue.length > 0);
  return html`<h1>Queue</h1>
    ${
      busy.length === 0
        ? html`<p>No environment has deployments in flight.</p>`
        : busy.map(
            (cell) => html`<section aria-labelledby=${`q-${cell.application}-${cell.environment}`}>
            <h2 id=${`q-${cell.application}-${cell.environment}`}>
              <a href=${environmentHref(cell.application, cell.environment)}>${cell.application} / ${cell.environment}</a>
            </h2>
            ${queueList(cell)}
          </section>`,
          )
    }`;
}

// Metrics -----------------------------------------------------------------------------------------------

function metricsView(m: MetricsRecord) {
  const rate =
    m.changeFailureRate.rate === null ? 'n/a' : `${Math.round(m.changeFailureRate.rate * 1000) / 10}%`;
  const max = Math.max(1, ...m.daily.map((d) => d.succeeded + d.failed));
  const barWidth = 14;
  const height = 80;
  return html`<dl class="metrics" data-metrics="">
      <div>
        <dt>Deployment frequency</dt>
        <dd data-metric="frequency">${m.deploymentFrequency.perDay}/day</dd>
        <dd class="muted">${m.deploymentFrequency.succeeded} succeeded in ${m.deploymentFrequency.days} days</dd>
      </div>
      <div>
        <dt>Lead time (median)</dt>
        <dd data-metric="lead-time">${duration(m.leadTime.medianSeconds)}</dd>
        <dd class="muted">${m.leadTime.unavailable ?? `${m.leadTime.samples} with a known commit time, mean ${duration(m.leadTime.meanSeconds)}`}</dd>
      </div>
      <div>
        <dt>Change failure rate</dt>
        <dd data-metric="failure-rate">${rate}</dd>
        <dd class="muted">${m.changeFailureRate.failed} of ${m.changeFailureRate.total} failed</dd>
      </div>
      <div>
        <dt>Time to restore (median)</dt>
        <dd data-metric="restore">${duration(m.timeToRestore.medianSeconds)}</dd>
        <dd class="muted">${m.timeToRestore.restored} restored, ${m.timeToRestore.unrestored} not yet</dd>
      </div>
    </dl>
    <figure>
      <svg
        role="img"
        aria-labelledby="chart-title"
        width=${m.daily.length * (barWidth + 4)}
        height=${height + 2}
        viewBox=${`0 0 ${m.daily.length * (barWidth + 4)} ${height + 2}`}
      >
        <title id="chart-title">Deployments per day: succeeded (green) and failed (red)</title>
        ${m.daily.map((d, i) => {
          const ok = (d.succeeded / max) * height;
          const bad = (d.failed / max) * height;
          return html`<g>
            <title>${d.day}: ${d.succeeded} succeeded, ${d.failed} failed</title>
            <rect class="bar-ok" x=${i * (barWidth + 4)} y=${height - ok} width=${barWidth} height=${ok} />
            <rect class="bar-fail" x=${i * (barWidth + 4)} y=${height - ok - bad} width=${barWidth} height=${bad} />
          </g>`;
        })}
      </svg>
      <figcaption>${m.from.slice(0, 10)} to ${m.to.slice(0, 10)} (window end exclusive)</figcaption>
    </figure>`;
}

// Deployment --------------------------------------------------------------------------------------------

export function deploymentView(input: {
  deployment: DeploymentRecord;
  events: EventRecord[];
  logs: LogRecord[];
  now: number;
}) {
  const { deployment: d, events, logs } = input;
  const assumed = events.find((e) => e.type === 'ROLE_ASSUMED');
  const final = FINAL.has(d.status);
  return html`<h1>Deployment <code>${d.deploymentId}</code></h1>
    <p>
      <a href=${environmentHref(d.application, d.environment)}>${d.application} / ${d.environment}</a>
      ${status(d)}
    </p>
    ${
      d.errorCode || d.errorMessage
        ? html`<div class="error" role="alert">
          <strong>${d.errorCode ?? 'FAILED'}</strong>
          <p class="error-message">${d.errorMessage ?? ''}</p>
        </div>`
        : null
    }
    <dl class="facts wide">
      <dt>Requester</dt>
      <dd>${requesterText(d.requester)}</dd>
      <dt>SourceIdentity</dt>
      <dd>${assumed ? String(assumed.detail.sourceIdentity ?? '') : '—'}</dd>
      <dt>Reason</dt>
      <dd class="reason">${d.reason ?? '—'}</dd>
      <dt>Kind</dt>
      <dd>${d.kind ?? 'deploy'}${d.dryRun ? ' (dry run)' : ''}${d.simulated ? ' (simulated)' : ''}</dd>
      <dt>Ref and commit</dt>
      <dd>${d.ref ?? ''} <code>${commitOf(d) ?? ''}</code></dd>
      <dt>Build output checksum (SHA-256)</dt>
      <dd><code>${d.buildOutput?.sha256 ?? '—'}</code></dd>
      <dt>Release</dt>
      <dd>${d.release !== undefined ? `#${d.release}` : '—'}</dd>
      <dt>Requested</dt>
      <dd>${time(d.requestedAt)}</dd>
      <dt>Finished</dt>
      <dd>${d.finishedAt ? time(d.finishedAt) : 'not yet'}</dd>
    </dl>
    ${
      d.changeSet
        ? html`<section aria-labelledby="cs-h"><h2 id="cs-h">Change set</h2><pre>${d.changeSet}</pre></section>`
        : null
    }
    <section aria-labelledby="timeline-h">
      <h2 id="timeline-h">Steps</h2>
      ${timeline(events, d, input.now)}
    </section>
    <section aria-labelledby="events-h">
      <h2 id="events-h">Events (in time order)</h2>
      <table class="events">
        <thead>
          <tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">Detail</th></tr>
        </thead>
        <tbody>
          ${events.map(
            (e) => html`<tr data-event=${e.type}>
              <td>${time(e.at)}</td>
              <td>${e.type}</td>
              <td><code class="detail">${JSON.stringify(e.detail)}</code></td>
            </tr>`,
          )}
        </tbody>
      </table>
    </section>
    <section aria-labelledby="logs-h">
      <h2 id="logs-h">Logs${final ? '' : ' (following)'}</h2>
      ${
        logs.length === 0
          ? html`<p>No job output yet.</p>`
          : html`<pre class="logs" tabindex="0" aria-label="Job output">${logs.map(
              (l) =>
                html`<span class="log-line" data-job=${l.job}>${`[${l.job}] ${l.message}`}${'\n'}</span>`,
            )}</pre>`
      }
    </section>`;
}

/** Each event starts a step; a step lasts until the next event (or now, while the deployment runs). */
function timeline(events: EventRecord[], d: DeploymentRecord, now: number) {
  if (events.length === 0) return html`<p>No steps recorded yet.</p>`;
  const end = d.finishedAt ? Date.parse(d.finishedAt) : now;
  const start = Date.parse(events[0]?.at ?? d.requestedAt);
  const total = Math.max(1, end - start);
  return html`<ol class="timeline">
    ${events.map((e, i) => {
      const from = Date.parse(e.at);
      const next = events[i + 1];
      const to = next ? Date.parse(next.at) : FINAL.has(d.status) ? from : end;
      const width = Math.max(0.5, ((to - from) / total) * 100);
      return html`<li>
        <span class="step">${e.type}</span>
        <svg class="bar" aria-hidden="true" width="100%" height="10" viewBox="0 0 100 10" preserveAspectRatio="none">
          <rect x=${((from - start) / total) * 100} y="0" width=${width} height="10" />
        </svg>
        <span class="muted">${duration((to - from) / 1000)}</span>
      </li>`;
    })}
  </ol>`;
}

export function errorView(status: number, detail: string) {
  return html`<h1>${status === 404 ? 'Not found' : status === 403 ? 'Not yours to read' : 'Could not load'}</h1>
    <p role="alert">${detail}</p>`;
}

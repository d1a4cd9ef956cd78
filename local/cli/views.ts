import { inventoryLines } from '../../functions/shared/template-policy/inventory-lines.ts';
import {
  between,
  type Cell,
  formatDuration,
  formatTime,
  type Paint,
  refAndCommit,
  STATUS_FORMAT,
  shortRequester,
  table,
  truncate,
} from './format.ts';
import {
  blockerText,
  clean,
  currentBlocker,
  describeEvents,
  formatStep,
  isFinal,
  isSuccess,
  SIMULATED,
} from './progress.ts';
import type { ApplicationsView, DeploymentView, EventView, LogLine, MetricsView } from './schemas.ts';

/** Pure renderers for `history`, `status`, `apps` and `logs`: data in, lines out. */

export interface ViewOptions {
  paint: Paint;
  /** Now, for the running time of deployments still in flight. */
  now: number;
  /** Time zone for timestamps; the machine's when absent. */
  timeZone?: string;
}

const statusCell = (d: DeploymentView): Cell => ({
  text: [d.status, d.dryRun && '(dry run)', d.simulated && SIMULATED].filter(Boolean).join(' '),
  format: STATUS_FORMAT[d.status] ?? 'reset',
});

function duration(d: DeploymentView, now: number): string {
  if (d.finishedAt) {
    const ms = between(d.requestedAt, d.finishedAt);
    return ms === undefined ? '-' : formatDuration(ms);
  }
  const ms = now - Date.parse(d.requestedAt);
  // Still running: the time so far, marked as open-ended.
  return Number.isNaN(ms) ? '-' : `${formatDuration(ms)}…`;
}

/** `promotion from staging (release 7)`, `rollback of release 41`, or `deploy`; undefined when unknown. */
export function kindText(d: DeploymentView): string | undefined {
  const sourceRelease = d.source?.release !== undefined ? ` (release ${d.source.release})` : '';
  switch (d.kind) {
    case 'promotion':
      return `promotion from ${d.source?.environment ?? '?'}${sourceRelease}`;
    case 'rollback':
      return d.rollbackOf !== undefined ? `rollback of release ${d.rollbackOf}` : 'rollback';
    case undefined:
      return undefined;
    default:
      return d.kind;
  }
}

/** The outcome code: red for a failure, plain for a deployment that ended as asked (e.g. SKIPPED). */
const outcomeCell = (d: DeploymentView): string | Cell =>
  d.errorCode ? { text: clean(d.errorCode), format: isSuccess(d.status) ? 'yellow' : 'red' } : '';

export function renderHistory(items: readonly DeploymentView[], options: ViewOptions): string[] {
  const { paint } = options;
  const rows = items.map((d): (string | Cell)[] => {
    const kind = [kindText(d) ?? 'deploy', d.freezeOverride ? 'freeze override' : undefined];
    return [
      clean(d.deploymentId),
      statusCell(d),
      d.release !== undefined ? String(d.release) : '-',
      truncate(clean(kind.filter(Boolean).join(', ')), 48),
      truncate(clean(refAndCommit(d.ref, d.resolvedCommit)), 40),
      truncate(clean(shortRequester(d.requester)), 32),
      formatTime(d.requestedAt, options.timeZone),
      duration(d, options.now),
      outcomeCell(d),
      truncate(clean(d.reason ?? ''), 40),
    ];
  });
  return table(
    ['ID', 'STATUS', 'RELEASE', 'KIND', 'REF', 'REQUESTER', 'REQUESTED', 'DURATION', 'ERROR', 'REASON'],
    rows,
    paint,
  );
}

export function renderStatus(
  d: DeploymentView,
  events: readonly EventView[],
  options: ViewOptions & { decorated: boolean },
): string[] {
  const { paint } = options;
  const field = (label: string, value: string | undefined) =>
    value === undefined || value === '' ? [] : [`${paint('dim', label.padEnd(12))}${value}`];
  const phase = d.phase && !isFinal(d.status) ? ` (${d.phase.toLowerCase().replaceAll('_', ' ')})` : '';
  // Under the label `account`: the number itself, not "account account 1111…".
  const target = [d.targetAccount, d.targetRegion, d.stackName && `stack ${d.stackName}`].filter(Boolean);
  const job = (kind: 'build' | 'deploy') => {
    const record = d.jobs?.[kind];
    return record ? [record.buildId, record.logUrl].filter(Boolean).join('  ') : undefined;
  };
  const simulated = d.simulated ? `  ${paint('yellow', SIMULATED)}` : '';
  const lines = [
    `${paint('bold', `deployment ${clean(d.deploymentId)}`)}  ${paint(STATUS_FORMAT[d.status] ?? 'reset', d.status)}${phase}${simulated}`,
    ...field('target', `${clean(d.application)}/${clean(d.environment)}${d.dryRun ? ' (dry run)' : ''}`),
    ...field(
      'runner',
      d.simulated
        ? paint('yellow', 'simulate: stand-ins for sam and aws ran the jobs, nothing was deployed')
        : undefined,
    ),
    ...field('kind', kindDetail(d)),
    ...field('release', d.release === undefined ? undefined : String(d.release)),
    ...field('ref', clean(refAndCommit(d.ref, d.resolvedCommit))),
    ...field(
      'requested',
      `${formatTime(d.requestedAt, options.timeZone)} by ${clean(shortRequester(d.requester))}`,
    ),
    ...field('reason', d.reason === undefined ? undefined : clean(d.reason)),
    ...field(
      'finished',
      d.finishedAt && `${formatTime(d.finishedAt, options.timeZone)} (took ${duration(d, options.now)})`,
    ),
    ...field('waiting', waitingDetail(d, options.now)),
    ...field('account', target.length > 0 ? clean(target.join(', ')) : undefined),
    ...field('build job', clean(job('build') ?? '')),
    ...field('deploy job', clean(job('deploy') ?? '')),
    ...field(
      'freeze',
      d.freezeOverride ? paint('yellow', 'a freeze window was overridden by an approver') : undefined,
    ),
    ...field(
      isSuccess(d.status) ? 'outcome' : 'error',
      d.errorCode &&
        paint(
          isSuccess(d.status) ? 'yellow' : 'red',
          clean([d.errorCode, d.errorMessage].filter(Boolean).join(': ')),
        ),
    ),
  ];
  if (d.changeSet) lines.push(paint('dim', 'change set'), ...indent(d.changeSet));
  const inventory = d.changeSetSummary?.iamInventory;
  // What an approver decides on: the roles, whom they trust, what they may do (the API's text, sanitised).
  if (inventory)
    lines.push(paint('dim', 'iam'), ...inventoryLines(inventory).map((line) => `  ${clean(line)}`));
  const steps = describeEvents(events);
  if (steps.length > 0) {
    lines.push(
      '',
      paint('dim', 'steps'),
      ...steps.map((step) => `  ${formatStep(step, options.decorated, paint)}`),
    );
  }
  return lines;
}

/** `deployment 01J… is deploying (for 2m05s)`: whom a waiting deployment waits behind now. */
function waitingDetail(d: DeploymentView, now: number): string | undefined {
  const blocker = currentBlocker(d);
  if (!blocker) return undefined;
  const ms = d.waitStartedAt ? now - Date.parse(d.waitStartedAt) : Number.NaN;
  const waited = Number.isNaN(ms) ? '' : ` (for ${formatDuration(ms)})`;
  return `${blockerText(blocker.deploymentId, blocker.reason)}${waited}`;
}

/** The kind with the deployment it takes its build output from, e.g. `promotion from staging (release 7), build of 01J…`. */
function kindDetail(d: DeploymentView): string | undefined {
  const kind = kindText(d);
  if (kind === undefined || d.kind === 'deploy') return undefined;
  return clean(d.source ? `${kind}, build output of deployment ${d.source.deploymentId}` : kind);
}

/** Multi-line server text (a change-set summary), cleaned and indented under its label. */
export const indent = (text: string) =>
  clean(text)
    .replace(/\n+$/, '')
    .split('\n')
    .map((line) => `  ${line}`);

export function renderApplications(body: ApplicationsView, paint: Paint): string[] {
  const rows: string[][] = [];
  for (const app of body.items) {
    if (app.environments.length === 0) rows.push([app.name, app.defaultRef ?? '-', '-', '', '', '', '']);
    for (const env of app.environments) {
      rows.push([
        app.name,
        app.defaultRef ?? '-',
        env.name,
        env.accountId ?? '-',
        env.region ?? '-',
        env.stackName ?? '-',
        env.mode ?? '-',
      ]);
    }
  }
  const cleaned = rows.map((row) => row.map(clean));
  return table(
    ['APPLICATION', 'DEFAULT REF', 'ENVIRONMENT', 'ACCOUNT', 'REGION', 'STACK', 'MODE'],
    cleaned,
    paint,
  );
}

const JOB_FORMAT: Record<string, Parameters<Paint>[0]> = { build: 'blue', deploy: 'magenta' };

export function renderLogLine(line: LogLine, paint: Paint, timeZone?: string): string {
  const stamp = formatTime(line.at, timeZone);
  const time = stamp === line.at ? stamp : stamp.slice(11);
  const job = clean(line.job).padEnd(6);
  return `${paint('dim', time)} ${paint(JOB_FORMAT[line.job] ?? 'reset', job)} ${clean(line.message)}`;
}

/** `crossdeploy metrics`: the DORA four, one per line, with what each figure is made of. */
export function renderMetrics(m: MetricsView): string[] {
  const span = (seconds: number | null) => (seconds === null ? 'n/a' : humanSeconds(seconds));
  const lead = m.leadTime.unavailable
    ? `n/a (${m.leadTime.unavailable})`
    : `median ${span(m.leadTime.medianSeconds)}, mean ${span(m.leadTime.meanSeconds)} (${m.leadTime.samples} deployments with a known commit time)`;
  const rate =
    m.changeFailureRate.rate === null ? 'n/a' : `${Math.round(m.changeFailureRate.rate * 1000) / 10}%`;
  return [
    `${m.application}/${m.environment}  ${m.from} .. ${m.to}  (${m.deployments} deployments counted)`,
    `deployment frequency  ${m.deploymentFrequency.perDay}/day (${m.deploymentFrequency.succeeded} succeeded in ${m.deploymentFrequency.days} days)`,
    `lead time             ${lead}`,
    `change failure rate   ${rate} (${m.changeFailureRate.failed} of ${m.changeFailureRate.total} failed)`,
    `time to restore       median ${span(m.timeToRestore.medianSeconds)}, mean ${span(m.timeToRestore.meanSeconds)} (${m.timeToRestore.restored} restored, ${m.timeToRestore.unrestored} not yet)`,
  ];
}

function humanSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.round((seconds / 3600) * 10) / 10}h`;
  return `${Math.round((seconds / 86400) * 10) / 10}d`;
}

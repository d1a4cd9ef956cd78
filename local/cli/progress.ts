import { between, formatDuration, type Paint, type StreamLike, shortSha } from './format.ts';
import type { DeploymentView, EventView } from './schemas.ts';

/**
 * Turns a deployment's audit events into the step lines people watch. Pure functions build the text;
 * `createProgressView` only decides what to (re)draw: on a terminal, one live line (spinner and elapsed
 * time) is redrawn in place under the finished steps; in a pipe, each new event becomes one plain line.
 */

export type Mark = 'ok' | 'fail' | 'warn' | 'info';
export interface StepLine {
  mark: Mark;
  text: string;
}

/** The tag of a `runner: simulate` deployment, so that it never reads like a real one. */
export const SIMULATED = 'SIMULATED';
const SIMULATED_OUTCOME = `${SIMULATED}: nothing was deployed`;
const OUTCOME_EVENTS = new Set(['SUCCEEDED', 'FAILED', 'REJECTED', 'CANCELLED', 'SUPERSEDED', 'SKIPPED']);

const IN_FLIGHT = new Set(['QUEUED', 'RUNNING']);
/** Only QUEUED and RUNNING are in flight, so a status added later (SUPERSEDED, SKIPPED) counts as final. */
export const isFinal = (status: string) => !IN_FLIGHT.has(status);
/** Ended as asked: deployed, or skipped because the target already runs exactly this (nothing to do). */
export const isSuccess = (status: string) => status === 'SUCCEEDED' || status === 'SKIPPED';

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing terminal escapes is the point
const ESCAPES = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Server-provided text (messages, reasons, job output) can carry escape sequences; printed raw they could
 * rewrite the terminal, so they are dropped before anything is shown.
 */
export const clean = (text: string) => text.replace(ESCAPES, '').replace(CONTROLS, '');

const str = (value: unknown) => (typeof value === 'string' && value !== '' ? clean(value) : undefined);

function findLast(events: readonly EventView[], type: string, before: number): EventView | undefined {
  for (let i = Math.min(before, events.length) - 1; i >= 0; i--)
    if (events[i]?.type === type) return events[i];
  return undefined;
}

function outcome(detail: Record<string, unknown>): string {
  const code = str(detail.code);
  const message = str(detail.message);
  if (code && message) return `${code} — ${message}`;
  return code ?? message ?? 'no reason recorded';
}

/**
 * The line for `events[index]`, or undefined when it has none. With `live`, the *_STARTED events print
 * nothing: the live line shows the running job and the matching *_FINISHED line replaces it.
 */
export function describeEvent(
  events: readonly EventView[],
  index: number,
  live: boolean,
): StepLine | undefined {
  const step = describeStep(events, index, live);
  const event = events[index];
  // The outcome line is the one people quote: a simulated one says so.
  if (step && event && OUTCOME_EVENTS.has(event.type) && event.detail.simulated === true) {
    return { ...step, text: `${step.text} (${SIMULATED_OUTCOME})` };
  }
  return step;
}

function describeStep(events: readonly EventView[], index: number, live: boolean): StepLine | undefined {
  const event = events[index];
  if (!event) return undefined;
  const { detail } = event;
  const tookSince = (startType: string) => {
    const ms = between(findLast(events, startType, index)?.at, event.at);
    return ms === undefined ? '' : ` in ${formatDuration(ms)}`;
  };
  const after = (startType: string) => {
    const ms = between(findLast(events, startType, index)?.at, event.at);
    return ms === undefined ? '' : ` after ${formatDuration(ms)}`;
  };

  switch (event.type) {
    case 'REQUESTED': {
      const requester = detail.requester as Record<string, unknown> | undefined;
      const who = requester ? describeWho(requester) : undefined;
      const parts = [str(detail.ref) ? `ref ${shortSha(str(detail.ref) as string)}` : undefined];
      if (detail.dryRun === true) parts.push('dry run');
      if (detail.simulated === true) parts.push(SIMULATED);
      const extras = parts.filter(Boolean).join(', ');
      return { mark: 'info', text: `requested${who ? ` by ${who}` : ''}${extras ? ` (${extras})` : ''}` };
    }
    case 'VALIDATED': {
      const target = [
        str(detail.targetAccount) && `account ${str(detail.targetAccount)}`,
        str(detail.region),
        str(detail.stackName) && `stack ${str(detail.stackName)}`,
      ].filter(Boolean);
      return {
        mark: 'ok',
        text: `validated${target.length > 0 ? `: ${target.join(', ')}` : ''}${reusedBuild(detail)}`,
      };
    }
    case 'FREEZE_OVERRIDDEN': {
      const by = detail.by as Record<string, unknown> | undefined;
      const who = by ? describeWho(by) : undefined;
      const until = str(detail.endsAt) ? ` (until ${str(detail.endsAt)})` : '';
      return {
        mark: 'warn',
        text: `freeze window "${str(detail.window) ?? '?'}"${until} overridden${who ? ` by ${who}` : ''}`,
      };
    }
    case 'BUILD_STARTED':
      return live ? undefined : { mark: 'info', text: 'build started' };
    case 'BUILD_FINISHED': {
      if (detail.status !== 'SUCCEEDED') {
        return {
          mark: 'fail',
          text: `build ${String(str(detail.status) ?? 'failed').toLowerCase()}${after('BUILD_STARTED')}`,
        };
      }
      const commit = str(detail.resolvedCommit);
      return {
        mark: 'ok',
        text: `build finished${tookSince('BUILD_STARTED')}${commit ? `, commit ${shortSha(commit)}` : ''}`,
      };
    }
    case 'LOCK_WAITING':
      return {
        mark: 'info',
        text: `waiting for the environment: ${blockerText(str(detail.behind) ?? '(unknown)', String(detail.reason))}`,
      };
    case 'LOCK_ACQUIRED':
      return { mark: 'ok', text: 'lock acquired' };
    case 'LOCK_TAKEN_OVER':
      return {
        mark: 'warn',
        text: `lock taken over from expired deployment ${str(detail.previousOwner) ?? '(unknown)'}`,
      };
    case 'ROLE_ASSUMED': {
      const role = /:assumed-role\/([^/]+)\//.exec(str(detail.assumedRoleArn) ?? '')?.[1];
      const account = str(detail.account);
      return {
        mark: 'ok',
        text: `role assumed${account ? ` in account ${account}` : ''}${role ? ` (${role})` : ''}`,
      };
    }
    case 'DEPLOY_STARTED':
      return live ? undefined : { mark: 'info', text: 'deploy started' };
    case 'DEPLOY_FINISHED':
      if (detail.status !== 'SUCCEEDED') {
        return {
          mark: 'fail',
          text: `deploy ${String(str(detail.status) ?? 'failed').toLowerCase()}${after('DEPLOY_STARTED')}`,
        };
      }
      return {
        mark: 'ok',
        text: `${str(detail.changeSet) ? 'change set created' : 'deploy finished'}${tookSince('DEPLOY_STARTED')}`,
      };
    case 'SETTLED':
      return { mark: 'info', text: detail.by === 'reconciler' ? 'settled by the reconciler' : 'settled' };
    case 'SUCCEEDED': {
      const release = typeof detail.release === 'number' ? `, release ${detail.release}` : '';
      return { mark: 'ok', text: `succeeded${tookSince('REQUESTED')}${release}` };
    }
    case 'SKIPPED':
      return { mark: 'warn', text: `skipped: ${outcome(detail)}` };
    case 'FAILED':
      return { mark: 'fail', text: `failed${after('REQUESTED')}: ${outcome(detail)}` };
    case 'REJECTED':
      if (detail.code === 'ENVIRONMENT_BUSY') {
        return {
          mark: 'fail',
          text: `environment busy: ${str(detail.message) ?? 'another deployment holds the lock'}`,
        };
      }
      return { mark: 'fail', text: `rejected: ${outcome(detail)}` };
    case 'SUPERSEDED':
      return {
        mark: 'warn',
        text: `superseded by the newer request ${str(detail.supersededBy) ?? '(unknown)'}`,
      };
    case 'CANCELLED':
      return { mark: 'warn', text: `cancelled${str(detail.message) ? `: ${str(detail.message)}` : ''}` };
    case 'CHANGE_SET_CREATED':
      return { mark: 'info', text: `change set: ${str(detail.summary) ?? 'created'}${broadening(detail)}` };
    case 'APPROVAL_REQUESTED':
      return {
        mark: 'warn',
        text: `awaiting approval until ${str(detail.expiresAt) ?? '?'}: crossdeploy approve ${str(detail.deploymentId) ?? '<id>'} (or reject); crossdeploy status ${str(detail.deploymentId) ?? '<id>'} lists the IAM it grants`,
      };
    case 'APPROVAL_NOT_REQUIRED':
      return { mark: 'info', text: 'no approval needed: the change set broadens nothing' };
    case 'APPROVED':
    case 'APPROVAL_REJECTED': {
      const who = isRecord(detail.decidedBy) ? describeWho(detail.decidedBy) : undefined;
      const why = str(detail.reason) ? `: ${str(detail.reason)}` : '';
      const verb = event.type === 'APPROVED' ? 'approved' : 'rejected';
      return { mark: event.type === 'APPROVED' ? 'ok' : 'fail', text: `${verb} by ${who ?? '?'}${why}` };
    }
    case 'APPROVAL_REFUSED': {
      const who = isRecord(detail.decidedBy) ? describeWho(detail.decidedBy) : undefined;
      return { mark: 'warn', text: `decision by ${who ?? '?'} refused: ${str(detail.code) ?? '?'}` };
    }
    case 'APPROVAL_TIMED_OUT':
      return { mark: 'fail', text: `no decision within ${String(detail.minutes ?? '?')} minutes` };
    case 'LOCK_RELEASED':
      return {
        mark: 'info',
        text: detail.by === 'reconciler' ? 'lock released by the reconciler' : 'lock released',
      };
    default:
      return { mark: 'info', text: clean(event.type).toLowerCase().replaceAll('_', ' ') };
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function broadening(detail: Record<string, unknown>): string {
  const reasons = Array.isArray(detail.broadening)
    ? detail.broadening.filter((r) => typeof r === 'string')
    : [];
  return reasons.length > 0 ? ` — ${reasons.slice(0, 5).join('; ')}${reasons.length > 5 ? '; …' : ''}` : '';
}

/** Whom a waiting deployment waits behind, e.g. `deployment 01J… is deploying`. */
export function blockerText(deploymentId: string, reason: string): string {
  const id = clean(deploymentId);
  return reason === 'HOLDS_LOCK' ? `deployment ${id} is deploying` : `an earlier request, ${id}, goes first`;
}

/**
 * Whom the deployment waits behind right now, from the record (the API's `waitingBehind`), which the lock
 * step keeps current as the queue moves; undefined unless it is waiting. The LOCK_WAITING event only names
 * the first blocker.
 */
export function currentBlocker(
  deployment: DeploymentView,
): { deploymentId: string; reason: string } | undefined {
  if (isFinal(deployment.status) || deployment.phase !== 'WAITING_FOR_LOCK') return undefined;
  return deployment.waitingBehind;
}

const blockerKey = (b: { deploymentId: unknown; reason: unknown }) =>
  `${String(b.deploymentId)}\u0000${String(b.reason)}`;

/** What a promotion or rollback deploys instead of building: another deployment's recorded build output. */
function reusedBuild(detail: Record<string, unknown>): string {
  const commit = str(detail.resolvedCommit);
  const build = commit ? `the build of ${shortSha(commit)}` : 'the recorded build output';
  const from = str(detail.sourceEnvironment);
  if (detail.kind === 'rollback' && typeof detail.rollbackOf === 'number') {
    return `, redeploying release ${detail.rollbackOf} (${build})`;
  }
  if (detail.kind === 'promotion') return `, promoting ${build}${from ? ` from ${from}` : ''}`;
  return commit ? `, reusing ${build}` : '';
}

function describeWho(requester: Record<string, unknown>): string | undefined {
  const text = (key: string) => str(requester[key]);
  switch (requester.type) {
    case 'local':
      return text('user') ? `${text('user')} (local)` : undefined;
    case 'iam':
      return text('principal') ?? text('arn');
    case 'slack':
      return `${text('userName') ?? text('userId') ?? '?'} (slack)`;
    case 'schedule':
      return `schedule ${text('scheduleName') ?? '?'}`;
    default:
      return undefined;
  }
}

/** Every line of an event list, e.g. for `status` or for a test. */
export function describeEvents(events: readonly EventView[], live = false): StepLine[] {
  return events.flatMap((_, i) => describeEvent(events, i, live) ?? []);
}

const isRedeploy = (deployment: DeploymentView) =>
  deployment.kind === 'promotion' || deployment.kind === 'rollback';

const PHASE_TEXT: Record<string, string> = {
  VALIDATING: 'validating',
  BUILDING: 'starting the build',
  WAITING_FOR_LOCK: 'waiting for the lock',
  SETTLING: 'settling',
};

/** What is happening right now, e.g. `build running 42s`; undefined once the deployment is final. */
export function liveText(
  deployment: DeploymentView,
  events: readonly EventView[],
  now: number,
): string | undefined {
  const text = currentActivity(deployment, events, now);
  return text !== undefined && deployment.simulated === true ? `${SIMULATED} ${text}` : text;
}

function currentActivity(
  deployment: DeploymentView,
  events: readonly EventView[],
  now: number,
): string | undefined {
  if (isFinal(deployment.status)) return undefined;
  const seen = (type: string) => events.some((event) => event.type === type);
  const since = (type: string) => {
    const at = findLast(events, type, events.length)?.at;
    return at ? formatDuration(now - Date.parse(at)) : '';
  };
  if (seen('DEPLOY_STARTED') && !seen('DEPLOY_FINISHED')) {
    return `${deployment.dryRun ? 'change set' : 'deploy'} running ${since('DEPLOY_STARTED')}`;
  }
  if (seen('BUILD_STARTED') && !seen('BUILD_FINISHED')) return `build running ${since('BUILD_STARTED')}`;
  if (deployment.status === 'QUEUED') return 'queued';
  // Promotions and rollbacks pass through BUILDING without a build: they deploy a recorded build output.
  if (deployment.phase === 'BUILDING' && isRedeploy(deployment)) return 'preparing the recorded build output';
  if (deployment.phase === 'DEPLOYING') {
    return seen('ROLE_ASSUMED') ? 'starting the deploy' : 'assuming the target role';
  }
  const blocker = currentBlocker(deployment);
  if (blocker) {
    const waited = deployment.waitStartedAt
      ? ` ${formatDuration(now - Date.parse(deployment.waitStartedAt))}`
      : '';
    return `waiting${waited} for the environment: ${blockerText(blocker.deploymentId, blocker.reason)}`;
  }
  return PHASE_TEXT[deployment.phase ?? ''] ?? 'running';
}

const MARKS: Record<Mark, { symbol: string; format: Parameters<Paint>[0] }> = {
  ok: { symbol: '✓', format: 'green' },
  fail: { symbol: '✗', format: 'red' },
  warn: { symbol: '!', format: 'yellow' },
  info: { symbol: '·', format: 'dim' },
};

/** A step line for a terminal (mark and colour) or for a pipe (the text alone). */
export function formatStep(step: StepLine, decorated: boolean, paint: Paint): string {
  if (!decorated) return step.text;
  const mark = MARKS[step.mark];
  const text = step.mark === 'info' ? paint('dim', step.text) : step.text;
  return `${paint(mark.format, mark.symbol)} ${text}`;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠤', '⠇', '⠏'];
const CLEAR_LINE = '\r\u001b[2K';

export interface ProgressView {
  /** Prints the steps not shown yet and refreshes the live line. */
  update(deployment: DeploymentView, events: readonly EventView[], now: number): void;
  /** Redraws the live line only (spinner, elapsed time); a no-op in a pipe. */
  tick(now: number): void;
  /** Shows a transient note in the live line (e.g. while reconnecting). */
  note(text: string | undefined): void;
  /** Removes the live line; call before printing anything else. */
  finish(): void;
}

export function createProgressView(
  stream: StreamLike,
  options: { live: boolean; paint: Paint },
): ProgressView {
  const { live, paint } = options;
  const printed = new Set<string>();
  let frame = 0;
  let shownLive = false;
  let current: { deployment: DeploymentView; events: readonly EventView[] } | undefined;
  let transient: string | undefined;

  const clearLive = () => {
    if (shownLive) stream.write(CLEAR_LINE);
    shownLive = false;
  };
  const drawLive = (now: number) => {
    if (!live || !current) return;
    const text = transient ?? liveText(current.deployment, current.events, now);
    clearLive();
    if (text === undefined) return;
    frame = (frame + 1) % SPINNER.length;
    // Longer than the terminal it would wrap, and `\r` would then only clear the last row of it.
    const columns = stream.columns && stream.columns > 0 ? stream.columns : 80;
    const width = Math.max(10, columns - 1);
    const line = `${SPINNER[frame]} ${text}`.slice(0, width);
    stream.write(paint('cyan', line));
    shownLive = true;
  };

  /** The blocker last printed: the first one comes with LOCK_WAITING, later ones only from the record. */
  let shownBlocker: string | undefined;

  return {
    update(deployment, events, now) {
      current = { deployment, events };
      const lines: string[] = [];
      events.forEach((event, i) => {
        // Events are append-only but not guaranteed to arrive in one piece: remember each one, not a count.
        const key = `${event.type}\u0000${event.at}\u0000${JSON.stringify(event.detail)}`;
        if (printed.has(key)) return;
        printed.add(key);
        if (event.type === 'LOCK_WAITING') {
          const blocker = blockerKey({ deploymentId: event.detail.behind, reason: event.detail.reason });
          // Already printed from the record, which was read before this event showed up.
          if (blocker === shownBlocker) return;
          shownBlocker = blocker;
        }
        const step = describeEvent(events, i, live);
        if (step) lines.push(formatStep(step, live, paint));
      });
      // The queue moved (the holder finished, an earlier request went first): say whom it waits behind now.
      const blocker = currentBlocker(deployment);
      if (blocker && blockerKey(blocker) !== shownBlocker) {
        const text = `${shownBlocker === undefined ? 'waiting for the environment' : 'now waiting'}: ${blockerText(blocker.deploymentId, blocker.reason)}`;
        shownBlocker = blockerKey(blocker);
        lines.push(formatStep({ mark: 'info', text }, live, paint));
      }
      if (lines.length > 0) {
        clearLive();
        stream.write(`${lines.join('\n')}\n`);
      }
      drawLive(now);
    },
    tick(now) {
      drawLive(now);
    },
    note(text) {
      transient = text;
    },
    finish() {
      clearLive();
      current = undefined;
    },
  };
}

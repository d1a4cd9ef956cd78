import type { ChatLinks, SlackMessage } from '#shared/chat/ports.ts';
import { describeChangeSet, iamInventoryLines } from '#shared/deployments/approval.ts';
import { describeRequester } from '#shared/registry/requester.ts';
import { type Deployment, isTerminal, type Requester } from '#shared/types.ts';
import { USAGE } from './commands.ts';

/**
 * Block Kit messages, within Slack's limits (section text 3000 characters, a field 2000, 10 fields per
 * section, 50 blocks). Anything a person typed (reasons, refs, names of refused requests) is escaped, so a
 * reason cannot mention `<!channel>` or forge a link.
 */

export type Milestone = 'ack' | 'build' | 'deploy' | 'approval' | 'final';
/**
 * Posting order: a milestone is posted only if no later one was. With the approval request that is five
 * posts, Slack's limit per response_url.
 */
export const MILESTONE_RANK: Record<Milestone, number> = {
  ack: 1,
  build: 2,
  deploy: 3,
  approval: 4,
  final: 5,
};

const SECTION_TEXT_MAX = 3000;
const FIELD_MAX = 2000;
const HISTORY_ITEMS = 10;

/** Slack's three control characters in mrkdwn; escaping them is all that is needed to make text inert. */
export function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Inline code that user input cannot break out of. */
const code = (text: string) => `\`${escapeText(text.replaceAll('`', "'"))}\``;

const section = (text: string) => ({
  type: 'section',
  text: { type: 'mrkdwn', text: clip(text, SECTION_TEXT_MAX) },
});
const fields = (pairs: [string, string | undefined][]) => ({
  type: 'section',
  fields: pairs
    .filter((pair): pair is [string, string] => pair[1] !== undefined && pair[1] !== '')
    .slice(0, 10)
    .map(([label, value]) => ({ type: 'mrkdwn', text: clip(`*${label}*\n${value}`, FIELD_MAX) })),
});
const context = (text: string) => ({
  type: 'context',
  elements: [{ type: 'mrkdwn', text: clip(text, SECTION_TEXT_MAX) }],
});

function link(url: string | undefined, label: string): string | undefined {
  // Only URLs we built ourselves get here; the check keeps a stray `|` or `>` from breaking the markup.
  if (!url || /[\s<>|]/.test(url)) return undefined;
  return `<${url}|${label}>`;
}

function who(requester: Requester): string {
  return requester.type === 'slack' ? `<@${requester.userId}>` : escapeText(describeRequester(requester));
}

function commit(deployment: Deployment): string | undefined {
  if (deployment.resolvedCommit) return code(deployment.resolvedCommit.slice(0, 12));
  return deployment.ref !== undefined ? code(deployment.ref) : undefined;
}

export function duration(deployment: Deployment, now: Date): string {
  const end = deployment.finishedAt ? Date.parse(deployment.finishedAt) : now.getTime();
  const seconds = Math.max(0, Math.round((end - Date.parse(deployment.requestedAt)) / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

const STATUS_EMOJI: Record<string, string> = {
  QUEUED: ':hourglass_flowing_sand:',
  RUNNING: ':arrows_counterclockwise:',
  SUCCEEDED: ':white_check_mark:',
  FAILED: ':x:',
  REJECTED: ':no_entry:',
  CANCELLED: ':heavy_minus_sign:',
  SUPERSEDED: ':fast_forward:',
  SKIPPED: ':next_track_button:',
};

function statusText(deployment: Deployment): string {
  const emoji = STATUS_EMOJI[deployment.status] ?? ':grey_question:';
  const phase = deployment.phase && !isTerminal(deployment.status) ? ` (${deployment.phase})` : '';
  const simulated = deployment.simulated ? `, ${SIMULATED}` : '';
  return `${emoji} ${deployment.status}${phase}${simulated}${waitingText(deployment)}`;
}

/**
 * Whom a waiting deployment waits behind now: the record's `waitingBehind`, which the lock step keeps
 * current as the queue moves. Nothing once it holds the lock (the field stays on the record).
 */
function waitingText(deployment: Deployment): string {
  const behind = deployment.waitingBehind;
  if (!behind || isTerminal(deployment.status) || deployment.phase !== 'WAITING_FOR_LOCK') return '';
  return behind.reason === 'HOLDS_LOCK'
    ? `, behind ${code(behind.deploymentId)} (deploying now)`
    : `, behind ${code(behind.deploymentId)} (requested earlier, goes first)`;
}

function logsLink(deployment: Deployment, links: ChatLinks): string | undefined {
  const url = deployment.jobs?.deploy?.logUrl ?? deployment.jobs?.build?.logUrl;
  return link(url, 'Logs') ?? link(links.status(deployment.deploymentId), 'Logs');
}

function footer(deployment: Deployment, links: ChatLinks): Record<string, unknown> {
  const parts = [
    `Deployment ${code(deployment.deploymentId)}`,
    link(links.status(deployment.deploymentId), 'Status'),
    logsLink(deployment, links),
    `\`/deploy status ${deployment.deploymentId}\``,
  ];
  return context(parts.filter((part) => part !== undefined).join(' · '));
}

/** `Promotion`, `Rollback` or `Deployment`: what a person asked for, in the words they used. */
const noun = (deployment: Deployment) =>
  deployment.kind === 'promotion' ? 'Promotion' : deployment.kind === 'rollback' ? 'Rollback' : 'Deployment';

/** Where a promotion's or rollback's build output comes from, e.g. `from staging (release 7)`. */
function sourceText(deployment: Deployment): string | undefined {
  const { source } = deployment;
  if (deployment.kind === 'rollback') {
    return deployment.rollbackOf !== undefined ? `of release ${deployment.rollbackOf}` : undefined;
  }
  if (deployment.kind !== 'promotion' || !source) return undefined;
  const release = source.release !== undefined ? ` (release ${source.release})` : '';
  return `from ${code(source.environment)}${release}`;
}

function summaryFields(deployment: Deployment, now: Date) {
  const source = sourceText(deployment);
  // At most 10 fields: a release is only given to real (not dry-run) deployments, so both never show.
  return fields([
    ['Application', code(deployment.application)],
    ['Environment', code(deployment.environment)],
    [noun(deployment), source],
    ['Commit', commit(deployment)],
    ['Requester', who(deployment.requester)],
    ['Status', statusText(deployment)],
    ['Duration', duration(deployment, now)],
    ['Release', deployment.release !== undefined ? String(deployment.release) : undefined],
    ['Dry run', deployment.dryRun ? 'yes (change set only)' : undefined],
    ['Freeze', deployment.freezeOverride ? 'overridden by an approver' : undefined],
    ['Reason', deployment.reason !== undefined ? escapeText(deployment.reason) : undefined],
  ]);
}

const title = (deployment: Deployment) =>
  `${escapeText(deployment.application)} → ${escapeText(deployment.environment)}`;

/**
 * Local mode's `runner: simulate` deployed nothing: every message about one says so, next to its title, so a
 * simulated prod deploy never reads like a real one in a channel.
 */
const SIMULATED = 'SIMULATED';
const simulatedTag = (deployment: Deployment) =>
  deployment.simulated ? ` :test_tube: *${SIMULATED}* (runner simulate: nothing is deployed)` : '';

// Replies to the person who typed the command (ephemeral) ------------------------------------------------

export function ephemeral(text: string, blocks?: Record<string, unknown>[]): SlackMessage {
  return {
    response_type: 'ephemeral',
    text: clip(text, SECTION_TEXT_MAX),
    blocks: blocks ?? [section(text)],
  };
}

export function errorMessage(problem: string, hint?: string): SlackMessage {
  const text = `:warning: ${escapeText(problem)}`;
  return ephemeral(text, [section(text), ...(hint ? [context(hint)] : [])]);
}

export function helpMessage(): SlackMessage {
  const text = [
    '*Deploy an application with crossdeploy*',
    ...USAGE.map((line) => `• ${line}`),
    'The ref is a branch, tag or 40-hex commit (default: the application’s default ref). The reason follows `--`.',
    'A promotion deploys the exact build of the source environment’s last successful deployment, without a rebuild; a rollback redeploys a release as `/deploy history` numbers them.',
  ].join('\n');
  return ephemeral(text);
}

export function acceptedMessage(
  deployment: Deployment,
  options: { replayed: boolean; progress: boolean; links: ChatLinks; now: Date },
): SlackMessage {
  const what = `${noun(deployment)} ${code(deployment.deploymentId)} of *${title(deployment)}*${simulatedTag(deployment)}`;
  const lead = options.replayed
    ? `:repeat: Already received: ${what.charAt(0).toLowerCase()}${what.slice(1)} is ${deployment.status}.`
    : `:rocket: ${what} accepted.`;
  const source = sourceText(deployment);
  const steps =
    deployment.kind === 'promotion' || deployment.kind === 'rollback'
      ? `It waits for the environment and deploys the recorded build${source ? ` ${source}` : ''}, without a new build`
      : 'It builds once, waits for the environment, deploys';
  const next = options.progress
    ? `${steps}, and I post each step and the result to this channel.`
    : 'Follow it with `/deploy status <id>`.';
  return ephemeral(`${lead} ${next}`, [
    section(`${lead}\n${next}`),
    summaryFields(deployment, options.now),
    footer(deployment, options.links),
  ]);
}

export function rejectedMessage(problem: string, code_: string, deploymentId?: string): SlackMessage {
  const recorded = deploymentId ? ` (recorded as REJECTED deployment \`${escapeText(deploymentId)}\`)` : '';
  return errorMessage(`Refused: ${problem}`, `${code_}${recorded}`);
}

export function statusMessage(deployment: Deployment, links: ChatLinks, now: Date): SlackMessage {
  const text = `Deployment ${code(deployment.deploymentId)} of *${title(deployment)}*${simulatedTag(deployment)}: ${statusText(deployment)}`;
  const failure = deployment.errorMessage
    ? [section(`*${escapeText(deployment.errorCode ?? 'ERROR')}*: ${escapeText(deployment.errorMessage)}`)]
    : [];
  return ephemeral(text, [
    section(text),
    summaryFields(deployment, now),
    ...failure,
    footer(deployment, links),
  ]);
}

export function historyMessage(
  application: string,
  environment: string,
  deployments: Deployment[],
  now: Date,
): SlackMessage {
  const heading = `*History of ${escapeText(application)} → ${escapeText(environment)}* (newest first)`;
  const lines = deployments.slice(0, HISTORY_ITEMS).map((d) => {
    const release = d.release !== undefined ? ` release ${d.release}` : '';
    const source = sourceText(d);
    const kind = source ? ` · ${noun(d).toLowerCase()} ${source}` : '';
    const freeze = d.freezeOverride ? ' · freeze overridden' : '';
    const simulated = d.simulated ? ` · *${SIMULATED}* (nothing deployed)` : '';
    return `${STATUS_EMOJI[d.status] ?? ''} ${code(d.deploymentId)} ${d.status}${release} ${commit(d) ?? ''} by ${who(d.requester)}, ${d.requestedAt.slice(0, 16).replace('T', ' ')} UTC (${duration(d, now)})${kind}${freeze}${simulated}`;
  });
  const text = lines.length > 0 ? `${heading}\n${lines.join('\n')}` : `${heading}\nNo deployments yet.`;
  return ephemeral(text);
}

// Progress posted to the channel through response_url --------------------------------------------------

const HEADLINES: Record<Exclude<Milestone, 'final' | 'approval'>, (deployment: Deployment) => string> = {
  ack: (deployment) => `:rocket: ${noun(deployment)} requested`,
  build: () => ':hammer_and_wrench: Build started',
  deploy: () => ':package: Deploy started',
};

export function progressMessage(
  milestone: Milestone,
  deployment: Deployment,
  options: { links: ChatLinks; now: Date; executionStatus?: string },
): SlackMessage {
  if (milestone === 'approval') return approvalMessage(deployment, options);
  const headline =
    milestone === 'final'
      ? finalHeadline(deployment, options.executionStatus)
      : HEADLINES[milestone](deployment);
  const lead = `${headline}: *${title(deployment)}*${simulatedTag(deployment)}`;
  const blocks: Record<string, unknown>[] = [section(lead), summaryFields(deployment, options.now)];
  if (milestone === 'final' && deployment.errorMessage) {
    blocks.push(
      section(`*${escapeText(deployment.errorCode ?? 'ERROR')}*: ${escapeText(deployment.errorMessage)}`),
    );
  }
  if (milestone === 'final' && deployment.changeSet) {
    blocks.push(section(`*Change set*\n${escapeText(clip(deployment.changeSet, 2_500))}`));
  }
  blocks.push(footer(deployment, options.links));
  return {
    response_type: 'in_channel',
    replace_original: false,
    text: `${headline}: ${deployment.application} → ${deployment.environment} (${deployment.status}${deployment.simulated ? `, ${SIMULATED}: nothing is deployed` : ''})`,
    blocks,
  };
}

function finalHeadline(deployment: Deployment, executionStatus: string | undefined): string {
  if (!isTerminal(deployment.status)) {
    // The workflow ended before the record did (an aborted or timed-out execution still being settled).
    return `:warning: Workflow ended ${escapeText(executionStatus ?? 'unexpectedly')}; the record is still being settled`;
  }
  const emoji = STATUS_EMOJI[deployment.status] ?? ':grey_question:';
  const word =
    deployment.dryRun && deployment.status === 'SUCCEEDED' ? 'Dry run succeeded' : deployment.status;
  return `${emoji} ${word.charAt(0)}${word.slice(1).toLowerCase()}`;
}

// Reviewed changes: the approval request with its buttons, and what a click answers -------------------------

/** The action ids of the two buttons; anything else in a signed payload is refused. */
export const APPROVAL_ACTIONS = { approve: 'crossdeploy_approve', reject: 'crossdeploy_reject' } as const;
export const APPROVAL_BLOCK_ID = 'crossdeploy_approval';
const CHANGE_LINES = 12;
const REVIEW_REASONS = 8;
const IAM_LINES = 15;

function changeLines(deployment: Deployment): string[] {
  const summary = deployment.changeSetSummary;
  if (!summary) {
    if (!deployment.changeSet) return [];
    const lines = deployment.changeSet.split('\n');
    return [fencedSection('*Change set*', lines, lines.length, moreLines(deployment.deploymentId))];
  }
  // A resource type is template text too (`Custom::_x_` is a valid type): inline code keeps it unstyled.
  const line = (sign: string, c: { logicalId: string; resourceType: string; replacement?: string }) =>
    `${sign} ${code(c.logicalId)} ${code(c.resourceType)}${c.replacement === 'True' ? ' *(replacement)*' : c.replacement === 'Conditional' ? ' _(may replace)_' : ''}`;
  const all = [
    ...summary.added.map((c) => line('+', c)),
    ...summary.modified.map((c) => line('~', c)),
    ...summary.removed.map((c) => line('-', c)),
  ];
  const heading = `*Change set* ${escapeText(describeChangeSet(summary))}`;
  // The CLI prints only the change set's one-line summary; the API's record has every resource change.
  const pointer = (more: number) =>
    `… and ${more} more: ${code(`GET /deployments/${deployment.deploymentId}`)} lists all (\`changeSetSummary\`)`;
  // Whole lines only, so that no inline code is cut open by the section's clip.
  const shown = wholeLines(
    all,
    CHANGE_LINES,
    SECTION_TEXT_MAX - heading.length - pointer(all.length).length - 2,
  );
  const more = all.length - shown.length;
  return [heading, ...shown, ...(more > 0 ? [pointer(more)] : [])];
}

/** As many of `lines` (at most `max`) as fit in `budget` characters with a newline after each. */
function wholeLines(lines: string[], max: number, budget: number): string[] {
  const shown: string[] = [];
  let used = 0;
  for (const line of lines.slice(0, max)) {
    if (used + line.length + 1 > budget) break;
    shown.push(line);
    used += line.length + 1;
  }
  return shown;
}

const FENCE = '```';

/** `crossdeploy status <id>` prints the whole change set text and the whole recorded IAM inventory. */
const moreLines = (deploymentId: string) => (more: number) =>
  `… and ${more} more lines: ${code(`crossdeploy status ${deploymentId}`)} shows all`;

/**
 * Template text for a reviewer, in a code block: Slack applies no bold, italics, strike or inline code inside
 * one, so `s3:*` on `arn:aws:s3:::bucket/*` reads exactly as it will be applied. Only `&<>` are escaped (Slack
 * shows them as themselves) and a run of backticks, the one thing that could close the block early, is broken
 * with a zero-width space. The fences stand on their own lines, so no backtick in the text touches them.
 */
function fencedLine(text: string): string {
  return escapeText(text).replace(/`(?=`)/g, '`\u200b');
}

/**
 * A heading, then as many whole lines as fit in a code block within a section's 3000 characters (at most
 * `maxLines`), then the pointer for the rest. The block is always closed: lines are cut, never the fence.
 */
function fencedSection(
  heading: string,
  lines: string[],
  maxLines: number,
  pointer: (more: number) => string,
): string {
  const escaped = lines.map(fencedLine);
  // Room for the heading, both fences and the longest pointer this list can need.
  const budget =
    SECTION_TEXT_MAX - heading.length - 2 * (FENCE.length + 1) - pointer(escaped.length).length - 1;
  // A first line longer than the whole budget is shown cut, and says so, rather than dropped.
  const first = escaped[0] === undefined ? [] : [clip(escaped[0], budget - 1)];
  const shown = wholeLines([...first, ...escaped.slice(1)], maxLines, budget);
  const more = escaped.length - shown.length;
  return [heading, FENCE, ...shown, FENCE, ...(more > 0 ? [pointer(more)] : [])].join('\n');
}

/**
 * Why `on-broadening` asked, and the IAM the change set would apply (plain text from the template), each in its
 * own section. What does not fit says where all of it is: `crossdeploy status` prints the whole recorded IAM
 * inventory; the reasons are on the API's record (the CLI shows only a few of them in its steps).
 */
function reviewSections(deployment: Deployment): string[] {
  const summary = deployment.changeSetSummary;
  if (!summary) return [];
  const id = deployment.deploymentId;
  const iam = iamInventoryLines(summary);
  return [
    ...(summary.broadening.length > 0
      ? [
          fencedSection(
            '*Why a review*',
            summary.broadening,
            REVIEW_REASONS,
            (more) =>
              `… and ${more} more: ${code(`GET /deployments/${id}`)} lists all (\`changeSetSummary.broadening\`)`,
          ),
        ]
      : []),
    ...(iam.length > 0 ? [fencedSection('*IAM in this change set*', iam, IAM_LINES, moreLines(id))] : []),
  ];
}

/**
 * "Approval needed", posted to the channel with Approve and Reject buttons. The buttons carry only the
 * deployment id: who clicked comes from Slack's signed payload, and every check runs again on the click.
 */
export function approvalMessage(
  deployment: Deployment,
  options: { links: ChatLinks; now: Date },
): SlackMessage {
  const expires = deployment.approval?.expiresAt;
  const headline = ':raising_hand: Approval needed';
  const lead = `${headline}: *${title(deployment)}*${simulatedTag(deployment)}`;
  const until = expires
    ? `Decide by ${expires.slice(0, 16).replace('T', ' ')} UTC, or it ends FAILED/APPROVAL_TIMEOUT and nothing is applied.`
    : '';
  const blocks: Record<string, unknown>[] = [
    section(lead),
    summaryFields(deployment, options.now),
    section(changeLines(deployment).join('\n') || '*Change set* (no summary recorded)'),
  ];
  for (const text of reviewSections(deployment)) blocks.push(section(text));
  blocks.push({
    type: 'actions',
    block_id: APPROVAL_BLOCK_ID,
    elements: [
      {
        type: 'button',
        action_id: APPROVAL_ACTIONS.approve,
        style: 'primary',
        text: { type: 'plain_text', text: 'Approve' },
        value: deployment.deploymentId,
        confirm: {
          title: { type: 'plain_text', text: 'Apply this change set?' },
          text: {
            type: 'mrkdwn',
            text: clip(`Executes exactly this change set on *${title(deployment)}*.`, 300),
          },
          confirm: { type: 'plain_text', text: 'Approve' },
          deny: { type: 'plain_text', text: 'Cancel' },
        },
      },
      {
        type: 'button',
        action_id: APPROVAL_ACTIONS.reject,
        style: 'danger',
        text: { type: 'plain_text', text: 'Reject' },
        value: deployment.deploymentId,
      },
    ],
  });
  if (until) blocks.push(context(until));
  blocks.push(footer(deployment, options.links));
  return {
    response_type: 'in_channel',
    replace_original: false,
    text: `${headline}: ${deployment.application} → ${deployment.environment} (${deployment.deploymentId})`,
    blocks,
  };
}

/** What replaces the approval request once a click decided it: the same facts, no buttons. */
export function decidedMessage(
  deployment: Deployment,
  decision: { decision: 'APPROVED' | 'REJECTED'; decider: Requester; decidedAt: string },
  options: { links: ChatLinks; now: Date },
): SlackMessage {
  const approved = decision.decision === 'APPROVED';
  const headline = approved
    ? `:white_check_mark: Approved by ${who(decision.decider)}`
    : `:no_entry: Rejected by ${who(decision.decider)}`;
  const next = approved
    ? 'The change set is being executed; the result follows here.'
    : 'The change set is deleted and nothing is applied.';
  const lead = `${headline}: *${title(deployment)}*${simulatedTag(deployment)}`;
  return {
    response_type: 'in_channel',
    replace_original: true,
    text: `${approved ? 'Approved' : 'Rejected'}: ${deployment.application} → ${deployment.environment} (${deployment.deploymentId})`,
    blocks: [
      section(`${lead}\n${next}`),
      section(changeLines(deployment).join('\n') || '*Change set*'),
      context(`Decided ${decision.decidedAt.slice(0, 19).replace('T', ' ')} UTC`),
      footer(deployment, options.links),
    ],
  };
}

/** A click that was refused: only the person who clicked sees why; the request stays as it was. */
export function refusedClickMessage(reason: string, code_: string): SlackMessage {
  return { ...errorMessage(`Not decided: ${reason}`, code_), replace_original: false };
}

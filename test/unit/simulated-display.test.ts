import { describe, expect, it } from 'vitest';
import { painter } from '#local/cli/format.ts';
import { createProgressView, describeEvents, liveText } from '#local/cli/progress.ts';
import type { DeploymentView, EventView } from '#local/cli/schemas.ts';
import { renderHistory, renderStatus } from '#local/cli/views.ts';
import { main } from '#local/cli.ts';
import type { ChatLinks } from '#shared/chat/ports.ts';
import type { Deployment } from '#shared/types.ts';
import {
  acceptedMessage,
  historyMessage,
  progressMessage,
  statusMessage,
} from '../../functions/slack/messages.ts';

/**
 * A simulated deployment (local mode, `runner: simulate`) must never read like a real one: every place a
 * person looks at it — CLI history, status and live progress, chat messages — says SIMULATED, and a real
 * deployment never does.
 */

const plain = painter(false);
const at = (seconds: number) =>
  new Date(Date.parse('2026-03-01T12:00:00.000Z') + seconds * 1000).toISOString();
const NOW = Date.parse(at(600));

const record = (overrides: Partial<Deployment> = {}): Deployment => ({
  deploymentId: '01JAAAAAAAA000000000000000',
  application: 'hello-world',
  environment: 'prod',
  ref: 'main',
  resolvedCommit: 'a'.repeat(40),
  targetAccount: '222222222222',
  targetRegion: 'eu-west-1',
  stackName: 'hello-world-prod',
  requester: { type: 'local', user: 'alice' },
  trigger: 'local',
  dryRun: false,
  status: 'SUCCEEDED',
  requestedAt: at(0),
  updatedAt: at(30),
  finishedAt: at(30),
  release: 4,
  kind: 'deploy',
  simulated: true,
  ...overrides,
});

const real = (overrides: Partial<Deployment> = {}): Deployment => {
  const { simulated: _simulated, ...rest } = record(overrides);
  return { ...rest, deploymentId: '01JBBBBBBBB000000000000000' };
};

/** The events a simulated deployment writes (detail as the cores write it). */
const simulatedEvents = (simulated = true): EventView[] => {
  const mark = simulated ? { simulated: true } : {};
  return [
    {
      type: 'REQUESTED',
      at: at(0),
      detail: { requester: { type: 'local', user: 'alice' }, trigger: 'local', ref: 'main', ...mark },
    },
    {
      type: 'VALIDATED',
      at: at(1),
      detail: { kind: 'deploy', targetAccount: '222222222222', region: 'eu-west-1', stackName: 'p', ...mark },
    },
    { type: 'BUILD_STARTED', at: at(2), detail: { buildId: 'b1' } },
    { type: 'BUILD_FINISHED', at: at(10), detail: { status: 'SUCCEEDED', resolvedCommit: 'a'.repeat(40) } },
    { type: 'DEPLOY_STARTED', at: at(12), detail: { buildId: 'd1' } },
    { type: 'DEPLOY_FINISHED', at: at(28), detail: { status: 'SUCCEEDED' } },
    { type: 'SUCCEEDED', at: at(30), detail: { release: 4, ...mark } },
  ];
};

const view = (d: Deployment) => d as unknown as DeploymentView;

describe('CLI output of a simulated deployment', () => {
  it('history tags the simulated row SIMULATED and leaves the real one alone', () => {
    const lines = renderHistory([view(record()), view(real())], { paint: plain, now: NOW, timeZone: 'UTC' });
    const simulatedRow = lines.find((line) => line.startsWith('01JAAAAAAAA'));
    const realRow = lines.find((line) => line.startsWith('01JBBBBBBBB'));
    expect(simulatedRow).toContain('SIMULATED');
    expect(realRow).toBeDefined();
    expect(realRow).not.toMatch(/simulat/i);
  });

  it('status says SIMULATED next to the status and that nothing was deployed', () => {
    const lines = renderStatus(view(record()), simulatedEvents(), {
      paint: plain,
      now: NOW,
      timeZone: 'UTC',
      decorated: false,
    });
    expect(lines[0]).toContain('SUCCEEDED');
    expect(lines[0]).toContain('SIMULATED');
    expect(lines.join('\n')).toContain('nothing was deployed');
    const realLines = renderStatus(view(real()), simulatedEvents(false), {
      paint: plain,
      now: NOW,
      timeZone: 'UTC',
      decorated: false,
    });
    expect(realLines.join('\n')).not.toMatch(/simulat/i);
  });

  it('the step lines of a simulated deployment say SIMULATED at the request and at the result', () => {
    const steps = describeEvents(simulatedEvents()).map((s) => s.text);
    expect(steps[0]).toMatch(/^requested by alice \(local\).*SIMULATED/);
    expect(steps.at(-1)).toMatch(/^succeeded .*SIMULATED.*nothing was deployed/);
    const realSteps = describeEvents(simulatedEvents(false)).map((s) => s.text);
    expect(realSteps.join('\n')).not.toMatch(/simulat/i);
  });

  it('the live line while it runs is tagged SIMULATED', () => {
    const running = view(record({ status: 'RUNNING', phase: 'DEPLOYING', finishedAt: undefined }));
    const events = simulatedEvents().slice(0, 5);
    expect(liveText(running, events, NOW)).toMatch(/^SIMULATED deploy running/);
    const realRunning = view(real({ status: 'RUNNING', phase: 'DEPLOYING', finishedAt: undefined }));
    expect(liveText(realRunning, simulatedEvents(false).slice(0, 5), NOW)).toMatch(/^deploy running/);

    // What a terminal shows: the redrawn live line carries the tag too.
    let written = '';
    const out = {
      isTTY: true,
      columns: 120,
      write: (chunk: string) => {
        written += chunk;
      },
    };
    const progress = createProgressView(out, { live: true, paint: plain });
    progress.update(running, events, NOW);
    expect(written).toContain('SIMULATED deploy running');
    progress.finish();
  });
});

describe('CLI commands on a simulated deployment', () => {
  const sink = () => {
    const stream = {
      text: '',
      isTTY: false,
      columns: 80,
      write: (chunk: string) => {
        stream.text += chunk;
      },
    };
    return stream;
  };
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  async function deploy(argv: string[], simulated: boolean) {
    const stdout = sink();
    const accepted = {
      deploymentId: '01JNEW',
      status: 'QUEUED',
      ref: 'main',
      ...(simulated ? { simulated } : {}),
    };
    const done = { ...record({ deploymentId: '01JNEW' }), ...(simulated ? {} : { simulated: undefined }) };
    const code = await main(argv, {
      stdout,
      stderr: sink(),
      env: {},
      fetch: async (input, init) => {
        const request = new Request(input, init);
        if (request.method === 'POST') return json(202, accepted);
        if (request.url.endsWith('/events')) return json(200, { items: simulatedEvents(simulated) });
        // --wait follows with one GET per poll (GET /deployments/{id}/follow).
        if (new URL(request.url).pathname.endsWith('/follow')) {
          return json(200, {
            deployment: JSON.parse(JSON.stringify(done)),
            items: simulatedEvents(simulated),
          });
        }
        return json(200, JSON.parse(JSON.stringify(done)));
      },
      sleep: async () => {},
      onInterrupt: () => () => {},
    });
    return { code, stdout: stdout.text };
  }

  it('the accepted line and the --wait title say SIMULATED; a real request does not', async () => {
    expect((await deploy(['deploy', 'hello-world', 'prod'], true)).stdout).toContain(
      'deployment 01JNEW queued (hello-world/prod, ref main, SIMULATED)',
    );
    const waited = await deploy(['deploy', 'hello-world', 'prod', '--wait'], true);
    expect(waited.code).toBe(0);
    expect(waited.stdout.split('\n')[0]).toContain('SIMULATED');
    expect(waited.stdout).toMatch(/succeeded .*SIMULATED: nothing was deployed/);

    expect((await deploy(['deploy', 'hello-world', 'prod'], false)).stdout).not.toMatch(/simulat/i);
    expect((await deploy(['deploy', 'hello-world', 'prod', '--wait'], false)).stdout).not.toMatch(/simulat/i);
  });
});

describe('chat messages of a simulated deployment', () => {
  const links: ChatLinks = { status: (id) => `http://127.0.0.1:3000/deployments/${id}` };
  const now = new Date(NOW);
  const textOf = (message: unknown) => JSON.stringify(message);

  it('the accepted, status and history replies say SIMULATED; a real deployment does not', () => {
    const queued = record({ status: 'QUEUED', finishedAt: undefined, release: undefined });
    expect(acceptedMessage(queued, { replayed: false, progress: true, links, now }).text).toContain(
      'SIMULATED',
    );
    expect(statusMessage(record(), links, now).text).toContain('SIMULATED');
    expect(historyMessage('hello-world', 'prod', [record(), real()], now).text).toMatch(
      /01JAAAAAAAA[^\n]*SIMULATED/,
    );

    const realQueued = real({ status: 'QUEUED', finishedAt: undefined, release: undefined });
    expect(textOf(acceptedMessage(realQueued, { replayed: false, progress: true, links, now }))).not.toMatch(
      /simulat/i,
    );
    expect(textOf(statusMessage(real(), links, now))).not.toMatch(/simulat/i);
    expect(historyMessage('hello-world', 'prod', [real()], now).text).not.toMatch(/simulat/i);
  });

  it('progress posts to the channel say SIMULATED in the notification text and the message', () => {
    for (const milestone of ['ack', 'build', 'deploy', 'final'] as const) {
      const message = progressMessage(milestone, record(), { links, now });
      expect(message.text).toContain('SIMULATED');
      expect(JSON.stringify(message.blocks?.[0])).toContain('SIMULATED');
      expect(textOf(progressMessage(milestone, real(), { links, now }))).not.toMatch(/simulat/i);
    }
  });
});

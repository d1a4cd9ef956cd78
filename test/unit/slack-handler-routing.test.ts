import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createHandler, type SlackDeps } from '../../functions/slack/handler.ts';

/**
 * The Slack function serves two HTTP routes: a click on an approval button must reach the interactions
 * handler (which decides a deployment) and a slash command the commands handler, never the other way round.
 * Fake handlers are enough here: this is routing, each handler has its own tests.
 */

const fixture = (name: string): APIGatewayProxyEventV2 =>
  JSON.parse(
    readFileSync(new URL(`../events/slack/${name}`, import.meta.url), 'utf8'),
  ) as APIGatewayProxyEventV2;

function routed() {
  const calls: { route: 'commands' | 'interactions'; event: APIGatewayProxyEventV2 }[] = [];
  const answer =
    (route: 'commands' | 'interactions') =>
    async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
      calls.push({ route, event });
      return { statusCode: 200, body: route };
    };
  const deps: SlackDeps = {
    commands: answer('commands'),
    interactions: answer('interactions'),
    // Routing an HTTP event never touches the notifier: any use of it fails the test.
    notifier: new Proxy({} as SlackDeps['notifier'], {
      get: (_, key) => {
        throw new Error(`the notifier was used (${String(key)})`);
      },
    }),
  };
  return { handle: createHandler(() => deps), calls };
}

describe('the Slack function routes each HTTP route to its own handler', () => {
  it('hands POST /slack/interactions (a button click) to the interactions handler', async () => {
    const { handle, calls } = routed();
    const event = fixture('interaction.json');
    expect(event.routeKey).toBe('POST /slack/interactions');
    const response = await handle(event);
    expect(response).toEqual({ statusCode: 200, body: 'interactions' });
    expect(calls.map((c) => c.route)).toEqual(['interactions']);
    expect(calls[0]?.event).toBe(event);
  });

  it('hands POST /slack/commands (a slash command) to the commands handler', async () => {
    const { handle, calls } = routed();
    const event = fixture('slash-command.json');
    expect(event.routeKey).toBe('POST /slack/commands');
    const response = await handle(event);
    expect(response).toEqual({ statusCode: 200, body: 'commands' });
    expect(calls.map((c) => c.route)).toEqual(['commands']);
    expect(calls[0]?.event).toBe(event);
  });
});

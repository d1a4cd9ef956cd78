import { describe, expect, it } from 'vitest';
import { isLoopback, readLocalConfig, SAMPLE_REGISTRY } from '#local/config.ts';
import { ConfigError } from '#shared/errors.ts';

const TOKEN = 'a'.repeat(32);

describe('local configuration: the bind address', () => {
  it('binds to loopback on port 3000 by default, without a token', () => {
    expect(readLocalConfig({}, '/srv/project')).toEqual({
      port: 3000,
      host: '127.0.0.1',
      dataDir: '/srv/project/.crossdeploy',
      registryPath: SAMPLE_REGISTRY,
      schedules: true,
    });
  });

  it.each(['0.0.0.0', '::', '[::]', '192.168.1.20', '10.0.0.5', 'build-host.internal', '::ffff:10.0.0.5'])(
    'refuses to bind %s without CROSSDEPLOY_API_TOKEN, naming the variable and the address',
    (host) => {
      let error: unknown;
      try {
        readLocalConfig({ CROSSDEPLOY_HOST: host });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(
        `CROSSDEPLOY_API_TOKEN: is required when CROSSDEPLOY_HOST (${host}) is not a loopback address`,
      );
    },
  );

  it('refuses an empty token as if none were set', () => {
    expect(() => readLocalConfig({ CROSSDEPLOY_HOST: '0.0.0.0', CROSSDEPLOY_API_TOKEN: '  ' })).toThrow(
      /CROSSDEPLOY_API_TOKEN: is required when CROSSDEPLOY_HOST/,
    );
  });

  it('refuses a token shorter than 16 characters', () => {
    expect(() => readLocalConfig({ CROSSDEPLOY_HOST: '0.0.0.0', CROSSDEPLOY_API_TOKEN: 'short' })).toThrow(
      /CROSSDEPLOY_API_TOKEN: must be at least 16 characters/,
    );
  });

  it('binds any address with a token, and keeps the token', () => {
    expect(readLocalConfig({ CROSSDEPLOY_HOST: '0.0.0.0', CROSSDEPLOY_API_TOKEN: TOKEN })).toMatchObject({
      host: '0.0.0.0',
      apiToken: TOKEN,
    });
  });

  it.each(['127.0.0.1', '127.0.0.2', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'])(
    'binds the loopback address %s without a token',
    (host) => {
      expect(isLoopback(host)).toBe(true);
      expect(readLocalConfig({ CROSSDEPLOY_HOST: host }).host).toBe(host);
    },
  );

  it('refuses a port outside 0-65535, naming PORT', () => {
    expect(() => readLocalConfig({ PORT: '70000' })).toThrow(/PORT: /);
    expect(() => readLocalConfig({ PORT: 'http' })).toThrow(/PORT: /);
  });
});

describe('local configuration: the Slack listener', () => {
  const SECRET = 'slack-signing-secret';

  it('opens the Slack port only with the signing secret, and keeps the port', () => {
    expect(
      readLocalConfig({ CROSSDEPLOY_SLACK_PORT: '3001', CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET }),
    ).toMatchObject({ port: 3000, slackPort: 3001 });
    expect(readLocalConfig({}).slackPort).toBeUndefined();
  });

  it('refuses a signing secret without CROSSDEPLOY_SLACK_PORT: Slack is never served on the API port', () => {
    expect(() => readLocalConfig({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET })).toThrow(
      /CROSSDEPLOY_SLACK_PORT: is required with CROSSDEPLOY_SLACK_SIGNING_SECRET/,
    );
  });

  it('refuses a Slack port without the signing secret', () => {
    expect(() => readLocalConfig({ CROSSDEPLOY_SLACK_PORT: '3001' })).toThrow(
      /CROSSDEPLOY_SLACK_SIGNING_SECRET: is required with CROSSDEPLOY_SLACK_PORT/,
    );
  });

  it('refuses the API port as the Slack port, and a port outside 0-65535', () => {
    expect(() =>
      readLocalConfig({
        PORT: '4000',
        CROSSDEPLOY_SLACK_PORT: '4000',
        CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET,
      }),
    ).toThrow(/CROSSDEPLOY_SLACK_PORT: must differ from PORT \(4000\)/);
    expect(() =>
      readLocalConfig({ CROSSDEPLOY_SLACK_PORT: '70000', CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET }),
    ).toThrow(/CROSSDEPLOY_SLACK_PORT: /);
  });

  it('takes a bot token only with chat configured, and only a bot token; the error never quotes the value', () => {
    const chat = { CROSSDEPLOY_SLACK_PORT: '3001', CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET };
    const bot = 'xoxb-0000000000-0000000000-LoCaLtOkEn42abcdefgh';
    expect(readLocalConfig({ ...chat, CROSSDEPLOY_SLACK_BOT_TOKEN: bot })).toMatchObject({ slackPort: 3001 });
    expect(JSON.stringify(readLocalConfig({ ...chat, CROSSDEPLOY_SLACK_BOT_TOKEN: bot }))).not.toContain(bot);
    expect(() => readLocalConfig({ CROSSDEPLOY_SLACK_BOT_TOKEN: bot })).toThrow(
      /CROSSDEPLOY_SLACK_SIGNING_SECRET: is required with CROSSDEPLOY_SLACK_BOT_TOKEN/,
    );
    const user = 'xoxp-0000000000-0000000000-UsErToKeN42abcdefgh';
    expect(() => readLocalConfig({ ...chat, CROSSDEPLOY_SLACK_BOT_TOKEN: user })).toThrow(
      /CROSSDEPLOY_SLACK_BOT_TOKEN: must be a Slack bot token/,
    );
    try {
      readLocalConfig({ ...chat, CROSSDEPLOY_SLACK_BOT_TOKEN: user });
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('UsErToKeN42');
    }
  });
});

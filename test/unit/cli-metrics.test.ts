import { describe, expect, it } from 'vitest';
import { type CliIo, main } from '#local/cli.ts';

function capture() {
  const stream = {
    text: '',
    isTTY: false,
    columns: 80,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
  };
  return stream;
}

async function runCli(argv: string[], fetch: CliIo['fetch']) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, {
    stdout,
    stderr,
    env: {},
    fetch,
    sleep: async () => {},
    onInterrupt: () => () => {},
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const METRICS = {
  application: 'hello-world',
  environment: 'staging',
  from: '2026-11-01T00:00:00.000Z',
  to: '2026-11-08T00:00:00.000Z',
  deployments: 6,
  deploymentFrequency: { succeeded: 3, days: 7, perDay: 0.429 },
  leadTime: { samples: 3, medianSeconds: 4200, meanSeconds: 16400 },
  changeFailureRate: { failed: 3, total: 6, rate: 0.5 },
  timeToRestore: { restored: 2, unrestored: 0, medianSeconds: 48150, meanSeconds: 48150 },
  daily: [],
};

describe('crossdeploy metrics', () => {
  it('asks GET /metrics for the window and prints the four figures', async () => {
    const asked: string[] = [];
    const result = await runCli(
      ['metrics', 'hello-world', 'staging', '--from', '2026-11-01', '--to', '2026-11-08'],
      async (input) => {
        asked.push(String(input instanceof Request ? input.url : input));
        return new Response(JSON.stringify(METRICS), { headers: { 'content-type': 'application/json' } });
      },
    );
    expect(result.code).toBe(0);
    expect(asked).toEqual([
      'http://127.0.0.1:3000/metrics?application=hello-world&environment=staging&from=2026-11-01&to=2026-11-08',
    ]);
    expect(result.stdout.split('\n')).toEqual([
      'hello-world/staging  2026-11-01T00:00:00.000Z .. 2026-11-08T00:00:00.000Z  (6 deployments counted)',
      'deployment frequency  0.429/day (3 succeeded in 7 days)',
      'lead time             median 70m, mean 4.6h (3 deployments with a known commit time)',
      'change failure rate   50% (3 of 6 failed)',
      'time to restore       median 13.4h, mean 13.4h (2 restored, 0 not yet)',
      '',
    ]);
  });

  it("prints the API's refusal of a bad window and exits 1", async () => {
    const result = await runCli(
      ['metrics', 'hello-world', 'staging', '--from', 'yesterday'],
      async () =>
        new Response(
          JSON.stringify({
            type: 'https://crossdeploy.dev/problems/invalid-field',
            title: 'Invalid field',
            status: 400,
            code: 'INVALID_FIELD',
            detail: 'from must be a date (2026-12-01) or an RFC 3339 date-time with a zone',
          }),
          { status: 400, headers: { 'content-type': 'application/problem+json' } },
        ),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('from must be a date');
  });
});

describe('crossdeploy console arguments', () => {
  it('takes a loopback port (default 8001) and refuses anything else', async () => {
    const { parseCli } = await import('#local/cli/args.ts');
    expect(parseCli(['console'], {}).command).toEqual({ name: 'console', port: 8001 });
    expect(parseCli(['console', '--port', '0'], {}).command).toEqual({ name: 'console', port: 0 });
    expect(() => parseCli(['console', '--port', '70000'], {})).toThrow(/--port must be a port number/);
    expect(() => parseCli(['console', '--port', '80; rm -rf /'], {})).toThrow(/--port must be a port number/);
  });
});

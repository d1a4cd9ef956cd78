import { describe, expect, it } from 'vitest';
import { deploymentView, fragment, gridView } from '#local/console/views.ts';

const HOSTILE = '<img src=x onerror=alert(1)>';

describe('console views', () => {
  it('shows frozen and the next scheduled promotion in the grid', () => {
    const html = fragment(
      gridView(
        [{ name: 'hello-world', environments: ['prod'] }],
        [
          {
            application: 'hello-world',
            environment: 'prod',
            queue: [],
            frozen: { window: 'november', endsAt: '2026-11-11T00:00:00.000Z' },
            nextPromotion: { schedule: 'weekday', from: 'staging', at: '2026-11-10T09:00:00.000Z' },
          },
        ],
        Date.parse('2026-11-10T00:00:00.000Z'),
      ),
    );
    expect(html).toContain('data-frozen="true"');
    expect(html).toContain('yes, november until');
    expect(html).toContain('2026-11-10 09:00:00Z');
    expect(html).toContain('from staging (weekday)');
  });

  it('escapes hostile text in every field a deployment page shows', () => {
    const html = fragment(
      deploymentView({
        deployment: {
          deploymentId: 'd1',
          application: 'hello-world',
          environment: 'prod',
          status: 'FAILED',
          requestedAt: '2026-11-10T00:00:00.000Z',
          reason: HOSTILE,
          ref: HOSTILE,
          errorCode: 'DEPLOY_FAILED',
          errorMessage: HOSTILE,
          changeSet: HOSTILE,
          requester: { type: 'local', user: HOSTILE },
        },
        events: [{ type: 'FAILED', at: '2026-11-10T00:00:01.000Z', detail: { message: HOSTILE } }],
        logs: [{ job: 'deploy', at: '2026-11-10T00:00:01.000Z', message: `</pre>${HOSTILE}` }],
        now: Date.parse('2026-11-10T00:00:02.000Z'),
      }),
    );
    expect(html).not.toContain('<img');
    expect(html).not.toContain('</pre><img');
    expect(html.match(/&lt;img src=x onerror=alert\(1\)>/g)?.length).toBeGreaterThanOrEqual(6);
  });
});

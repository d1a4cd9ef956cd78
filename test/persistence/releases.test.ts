import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import { assignRelease } from '#shared/deployments/releases.ts';
import { createTestStore } from '#test/support/store.ts';

const deployment = (id: string) =>
  newDeployment({
    deploymentId: id,
    application: 'hello-world',
    environment: 'prod',
    requester: { type: 'local', user: 'alice' },
    trigger: 'local',
    requestedAt: '2026-11-28T10:00:00.000Z',
  });

describe('release numbers', () => {
  it('are 1..n without gaps or duplicates when deployments complete concurrently', async () => {
    const { store } = await createTestStore();
    const ids = Array.from({ length: 12 }, (_, i) => `d${i}`);
    const numbers = await Promise.all(ids.map((id) => assignRelease(store, deployment(id), 'now')));
    expect([...numbers].sort((a, b) => a - b)).toEqual(ids.map((_, i) => i + 1));
    for (const [i, id] of ids.entries()) {
      expect((await store.getRelease('hello-world', 'prod', numbers[i]!))?.deploymentId).toBe(id);
    }
  });

  it('gives a retried step the number it already claimed', async () => {
    const { store } = await createTestStore();
    const first = await assignRelease(store, deployment('a'), 'now');
    expect(await assignRelease(store, deployment('a'), 'later')).toBe(first);
    expect(await assignRelease(store, deployment('b'), 'now')).toBe(first + 1);
    expect((await store.latestRelease('hello-world', 'prod'))?.release).toBe(2);
  });

  it('are counted per application and environment', async () => {
    const { store } = await createTestStore();
    await assignRelease(store, deployment('a'), 'now');
    const staging = { ...deployment('s'), environment: 'staging' };
    expect(await assignRelease(store, staging, 'now')).toBe(1);
  });
});

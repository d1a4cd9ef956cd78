import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '#shared/logger.ts';
import { showLogs } from '#test/support/logs.ts';

let written: string[] = [];
beforeEach(() => {
  written = [];
  const capture = (chunk: unknown) => {
    written.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture as never);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture as never);
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => capture(args.join(' ')));
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('log lines in tests', () => {
  it('print nothing in a test that does not ask for them, at any level', () => {
    logger.debug('a debug line');
    logger.info('an info line', { deploymentId: '01J0000000000000000000000A' });
    logger.warn('a warning');
    logger.error('an error', new Error('boom'));
    expect(written).toEqual([]);
  });

  it('still reach a spy on the logger, so a test may assert what was logged without printing it', () => {
    const warn = vi.spyOn(logger, 'warn');
    logger.warn('a warning', { code: 'X' });
    expect(warn).toHaveBeenCalledWith('a warning', { code: 'X' });
    expect(written).toEqual([]);
  });
});

describe('log lines in a test that asks for them (showLogs)', () => {
  showLogs();

  it('are printed as Lambda would print them', () => {
    logger.info('an info line', { deploymentId: '01J0000000000000000000000A' });
    const line = JSON.parse(written.join('')) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'INFO',
      message: 'an info line',
      deploymentId: '01J0000000000000000000000A',
    });
  });
});

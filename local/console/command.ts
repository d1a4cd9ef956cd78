import type { AddressInfo } from 'node:net';
import { EXIT, type ExitCode } from '../cli/errors.ts';
import type { StreamLike } from '../cli/format.ts';
import { createConsoleServer } from './proxy.ts';
import type { ApiCall } from './routes.ts';

/** `crossdeploy console`: listens on loopback until interrupted. */
export async function serveConsole(options: {
  port: number;
  call: ApiCall;
  apiUrl: URL;
  stdout: StreamLike;
  onInterrupt: (onStop: () => void) => () => void;
}): Promise<ExitCode> {
  const server = createConsoleServer(options.call);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  options.stdout.write(
    `crossdeploy console for ${options.apiUrl.origin}: http://127.0.0.1:${port}/console (read-only; Ctrl-C to stop)\n`,
  );
  await new Promise<void>((resolve) => {
    options.onInterrupt(() => {
      server.close();
      server.closeAllConnections();
      resolve();
    });
  });
  return EXIT.ok;
}

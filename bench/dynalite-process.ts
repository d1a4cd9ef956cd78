/**
 * dynalite (in memory) in a process of its own, for the bench: DynamoDB is another service in AWS, and on this
 * machine its emulator then gets the second core. Prints the port; exits when its parent closes stdin.
 */
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

// Registers toReceiveCommandWith & co. on vitest's expect (and their types).
import 'aws-sdk-client-mock-vitest/extend';

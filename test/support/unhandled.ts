// trackUnhandledRejections: collects the promise rejections nobody handled while each test of
// the calling file runs (each one would end a server: Node exits on an unhandled rejection).
import { afterEach, beforeEach } from 'vitest';

/** trackUnhandledRejections registers the hooks; the returned function reads this test's list. */
export function trackUnhandledRejections(): () => readonly unknown[] {
  let unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeEach(() => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  return () => unhandled;
}

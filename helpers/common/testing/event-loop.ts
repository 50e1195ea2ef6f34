/** For unit tests on a fake clock. Test-only. */

// Kept from before any test fakes the timers: the loop must turn whatever the test fakes.
const realSetImmediate = setImmediate;

/**
 * Turns the event loop until `done()` or `turns` turns have passed, and returns `done()`. Real
 * sockets and close callbacks make progress meanwhile; a fake clock stays where it is.
 */
export async function turnUntil(done: () => boolean, turns = 1000): Promise<boolean> {
  for (let turn = 0; turn < turns && !done(); turn++) await new Promise((resolve) => realSetImmediate(resolve));
  return done();
}

// The headless Chromium the dashboard tests drive (through playwright-core): where it is, and a
// skip when it is missing — except in CI, where a missing browser is a failure, not a skip.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';

export const CHROMIUM = '/usr/bin/chromium';

/** True (and the test skipped, or failed in CI) when Chromium is not installed. */
export function chromiumMissing(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return false;
  const msg = `${CHROMIUM} is missing: install it with \`apt-get install chromium\``;
  if (process.env['CI'] === 'true') assert.fail(msg);
  t.skip(msg);
  return true;
}

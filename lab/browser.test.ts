import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../helpers/common/testing/standins.ts';

// The recipes' app stand-in and the browser step, as the lab image runs them.
const CI_DIR = join(dirname(fileURLToPath(import.meta.url)), 'base/ci');
const TESTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'base/tests');
// As in the image: Debian's python3, where python3-selenium is installed.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const HAS_BROWSER = existsSync('/usr/bin/chromedriver') && spawnSync(PYTHON, ['-c', 'import selenium']).status === 0;
/** Why a test of one engine does not run on this machine: each skip says so in the output. */
const NO_BROWSER = "no browser engine on this machine: Debian's chromium-driver and python3-selenium, as in the lab image";
const HAS_BROWSER_HERE = 'this machine has a browser engine (chromium-driver and python3-selenium): the no-browser path is not taken';

function browserStep(url: string, recipe: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      PYTHON,
      [join(CI_DIR, 'browser.py'), url],
      { env: { ...process.env, RECIPE_DIR: join(TESTS_DIR, recipe), PYTHONDONTWRITEBYTECODE: '1', ...env }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

describe("the lab's browser step, on the recipes' app", () => {
  let app: RunningService;
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'accept-browser-'));
    await writeFile(join(root, 'VERSION'), '1.2.3\n');
    app = await startService(CI_DIR, 'app.py', (port) => ['--port', String(port), '--root', root, '--title', 'Custom HTML'], {}, '/');
  });
  afterAll(async () => {
    await app?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('without a browser engine, runs on the HTTP stand-in, says so, and fails the script check it cannot pass', async (ctx) => {
    ctx.skip(HAS_BROWSER, HAS_BROWSER_HERE);
    const { code, out } = await browserStep(app.url, 'custom-html');
    expect(out).toContain('browser tests: engine http-standin (no browser: HTML fetched and parsed, no JavaScript)');
    expect(out).toMatch(/browser test test_home_page_runs_its_script: FAILED[\s\S]*AssertionError/);
    expect(out).toContain('browser tests: 2 passed, 1 failed (custom-html/browser_test.py)');
    expect(code).toBe(1);
  });

  it('names a browser that does not start as its engine line, and fails the step', async (ctx) => {
    ctx.skip(!HAS_BROWSER, NO_BROWSER);
    const { code, out } = await browserStep(app.url, 'custom-html', { CCCI_CHROMEDRIVER: '/bin/false' });
    expect(out).toMatch(/^browser tests: engine none: the browser did not start: .+$/m);
    expect(out).not.toContain('passed');
    expect(code).toBe(1);
  });

  it('with Chromium and chromium-driver, runs every test on it, names its version, and passes the script check', async (ctx) => {
    ctx.skip(!HAS_BROWSER, NO_BROWSER);
    const { code, out } = await browserStep(app.url, 'custom-html');
    expect(out).toMatch(/browser tests: engine chromium \d+\.\S+ headless \(Selenium \S+, chromium-driver/);
    expect(out).toContain('browser tests: 3 passed, 0 failed (custom-html/browser_test.py)');
    expect(code, out).toBe(0);
  });
});

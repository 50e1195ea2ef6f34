import { describe, expect, it } from 'vitest';
import { readBrowserRun } from './browser-log.ts';

/** pytest -v with pytest-playwright, as pytest prints it: the header, one line per test id, the summary. */
const PYTEST_PLAYWRIGHT = `============================= test session starts ==============================
platform linux -- Python 3.11.2, pytest-8.3.4, pluggy-1.5.0 -- /usr/bin/python3
cachedir: .pytest_cache
rootdir: /drone/src/tests/custom-html
plugins: base-url-2.1.0, playwright-0.5.2
collecting ... collected 3 items

browser_test.py::test_home_title[chromium] PASSED                        [ 33%]
browser_test.py::test_home_heading[chromium] PASSED                      [ 66%]
browser_test.py::test_script_runs[chromium] PASSED                       [100%]

============================== 3 passed in 4.07s ===============================
`;

/** The lab's own browser step: Debian's Chromium through Selenium, which says so. */
const LAB_STEP = 'engine chromium 150.0.7871.100 headless (Selenium 4.8.3, chromium-driver; kept browsers)\n3 passed, 0 failed\n';

describe('readBrowserRun', () => {
  it('reads real pytest-playwright output: the plugin and the browser as the engine, and the summary counts', () => {
    expect(readBrowserRun(PYTEST_PLAYWRIGHT)).toEqual({ engine: 'playwright 0.5.2 (chromium)', passed: 3, failed: 0 });
    expect(/^playwright /i.test(readBrowserRun(PYTEST_PLAYWRIGHT).engine!)).toBe(true);
  });

  it('counts failed and errored tests from the summary', () => {
    const failing = PYTEST_PLAYWRIGHT.replace('3 passed in 4.07s', '1 failed, 2 passed, 1 error in 4.07s');
    expect(readBrowserRun(failing)).toMatchObject({ passed: 2, failed: 2 });
  });

  it("takes the lab's engine line as what it says, which cc-ci's profile does not take for Playwright", () => {
    const run = readBrowserRun(LAB_STEP);
    expect(run).toEqual({ engine: 'chromium 150.0.7871.100 headless (Selenium 4.8.3, chromium-driver; kept browsers)', passed: 3, failed: 0 });
    expect(/^playwright /i.test(run.engine!)).toBe(false);
  });

  it('names no engine for a log that says none', () => {
    expect(readBrowserRun('ran 3 checks\n3 passed\n').engine).toBeUndefined();
  });
});

/**
 * What a build's browser step says it ran, read from its log. Real pytest-playwright output names
 * the plugin in pytest's header ("plugins: …, playwright-0.5.2, …"), the browser in each test's id
 * ("test_home[chromium]") and the counts in pytest's summary ("3 passed in 2.41s"). A step that
 * is not pytest-playwright may say its engine on a line of its own ("engine chromium 150 …"), as
 * the lab's does; the profile then decides whether that engine is the one D3 asks for.
 */

export interface BrowserRun {
  /** "playwright 0.5.2 (chromium)", or what an "engine …" line says; undefined when neither is there. */
  engine?: string;
  passed: number;
  /** Failed and errored tests, as pytest counts them. */
  failed: number;
}

const PLAYWRIGHT_PLUGIN = /^plugins:.*?\bplaywright-(\d[\w.]*)/m;
const BROWSER_ID = /\[(chromium|firefox|webkit)(?:-[^\]]*)?\]/g;
const ENGINE_LINE = /(?:^|\s)engine (.+)/;

export function readBrowserRun(text: string): BrowserRun {
  const plugin = PLAYWRIGHT_PLUGIN.exec(text);
  const browsers = [...new Set([...text.matchAll(BROWSER_ID)].map((match) => match[1]!))];
  const engine = plugin ? `playwright ${plugin[1]}${browsers.length ? ` (${browsers.join(', ')})` : ''}` : ENGINE_LINE.exec(text)?.[1]?.trim();
  const count = (pattern: RegExp) => [...text.matchAll(pattern)].map((match) => Number(match[1]));
  // pytest's summary line holds each count once; a step that prints several takes the largest.
  const passed = Math.max(0, ...count(/(\d+) passed/g));
  const failed = Math.max(0, ...count(/(\d+) failed/g)) + Math.max(0, ...count(/(\d+) errors?\b/g));
  return { ...(engine ? { engine } : {}), passed, failed };
}

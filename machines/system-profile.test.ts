import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../helpers/common/config.ts';
import { fill } from './system-profile.ts';
import { exampleProfile } from './system-profile.fixture.ts';
import { resolveLabTarget } from './providers/lab.ts';

const SPECS = fileURLToPath(new URL('../acceptance/', import.meta.url));

/** A spec's code without its comments: what it does, not what it says about it. */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe('the system profile', () => {
  const profile = exampleProfile();

  it("holds cc-ci's names: docs, units, build parameters, stages, links and layout", () => {
    expect(profile.docs.install).toBe('docs/install.md');
    expect(profile.host.oneshots).toContain('ccci-reconcile-bridge.service');
    expect(profile.build.params).toEqual({ recipe: 'RECIPE', pull: 'PR', comment: 'COMMENT_ID' });
    expect(fill(profile.dashboard.runPath, { n: 7 })).toBe('/runs/7/');
    expect(fill(profile.dashboard.badgePath, { recipe: 'n8n' })).toBe('/badge/n8n.svg');
    expect(profile.recipes.localTests).toBe('tests');
  });

  it("takes the names the DoD does not give from the operator's settings, and the layout from its own", () => {
    const set = exampleProfile({ ACCEPT_ARCHITECTURE_DOC: 'docs/design.md' });
    expect(set.host.oneshots).toEqual(['ccci-secrets.service', 'ccci-reconcile-swarm.service', 'ccci-reconcile-bridge.service']);
    expect(set.docs.architecture).toBe('docs/design.md');
  });

  it("is the lab's own, under its own name", () => {
    // What an operator set for a real target does not reach the lab: its generated repos carry its own names.
    const lab = resolveLabTarget(
      loadConfig({
        ACCEPT_TARGET: 'lab',
        ACCEPT_LAB_DIR: '/tmp/accept-lab-unit',
        ACCEPT_ONESHOTS: 'elsewhere.service',
        ACCEPT_RUNBOOK_DOC: 'docs/elsewhere.md',
      }),
    ).profile;
    expect(lab.name).toMatch(/^lab/);
    expect(lab.host.oneshots).toContain('ccci-reconcile-dashboard.service');
    expect(lab.docs.runbook).toBe('docs/runbook.md');
    // The same build names, but its browser tests run on Chromium through Selenium, not Playwright.
    const { browserEngine, ...names } = lab.build;
    const { browserEngine: ccciEngine, ...ccciNames } = profile.build;
    expect(names).toEqual(ccciNames);
    expect(ccciEngine.name).toBe('Playwright');
    expect(
      new RegExp(browserEngine.pattern, 'i').test(
        'chromium 120.0.6099.224 headless (Selenium 4.8.0, chromium-driver; kept browsers, one build at a time in each, its origin cleared first; no sandbox: root in a lab container)',
      ),
    ).toBe(true);
    for (const engine of ['http-standin (no browser: HTML fetched and parsed, no JavaScript)', 'playwright chromium 120.0'])
      expect(new RegExp(browserEngine.pattern, 'i').test(engine), engine).toBe(false);
    expect(new RegExp(ccciEngine.pattern, 'i').test('playwright chromium 120.0')).toBe(true);
    expect(new RegExp(ccciEngine.pattern, 'i').test('http-standin (no browser: HTML fetched and parsed, no JavaScript)')).toBe(false);
  });

  it('is where the specs take those names from: no spec holds one as a literal', async () => {
    const files = (await readdir(SPECS)).filter((file) => file.endsWith('.spec.ts'));
    expect(files.length).toBe(17);
    const names = [
      ...Object.values(profile.docs),
      ...profile.host.oneshots,
      'ccci-',
      profile.recipes.enrolled,
      fill(profile.recipes.tree, { recipe: '' }),
      fill(profile.dashboard.runPath, { n: '' }).replace(/\/$/, '/'),
      fill(profile.dashboard.badgePath, { recipe: '' }).replace(/\.svg$/, ''),
    ];
    const params = Object.values(profile.build.params).map((param) => new RegExp(`\\.${param}\\b|['"\`]${param}['"\`=]`));
    const stages = [...Object.values(profile.build.stages), profile.build.browserSteps].map((words) => new RegExp(`/${words.replace(/\|/g, '\\|')}/[a-z]*`));
    const found: string[] = [];
    for (const file of files) {
      const text = code(await readFile(join(SPECS, file), 'utf8'));
      for (const name of names) if (text.includes(name)) found.push(`${file}: ${name}`);
      for (const pattern of [...params, ...stages]) if (pattern.test(text)) found.push(`${file}: ${pattern.source}`);
    }
    expect(found).toEqual([]);
  });
});

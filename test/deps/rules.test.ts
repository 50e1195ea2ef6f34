import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LAB_IMPORT_RULE,
  LAB_PATH_READERS,
  LAB_PATH_READ_RULE,
  SESSION_KEPT_RULE,
  TEST_ONLY_RULE,
  checkDependencies,
  isTest,
  isTestOnly,
  checkLabPathReads,
  describeViolation,
  importsOf,
  labPathReadsOf,
  resolveSpecifier,
  trackedSources,
  type SourceFile,
} from './rules.ts';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const file = (path: string, ...lines: string[]): SourceFile => ({ path, text: lines.join('\n') });
const check = (...files: SourceFile[]) => checkDependencies(files).map(describeViolation);

describe('importsOf', () => {
  it('reads static, re-export, type-only and dynamic specifiers with their lines, and nothing in comments or strings', () => {
    const text = [
      "import { a } from './a.ts';",
      "export { b } from './b.ts';",
      "export * from './c.ts';",
      "import type { D } from './d.ts';",
      '// import { e } from "./not-an-import.ts";',
      "const f = await import('./f.ts');",
      'const s = "import(\'./in-a-string.ts\')";',
      "type G = typeof import('./g.ts');",
      "import './side-effect.ts';",
    ].join('\n');
    expect(importsOf('x.ts', text)).toEqual([
      { line: 1, specifier: './a.ts' },
      { line: 2, specifier: './b.ts' },
      { line: 3, specifier: './c.ts' },
      { line: 4, specifier: './d.ts' },
      { line: 6, specifier: './f.ts' },
      { line: 8, specifier: './g.ts' },
      { line: 9, specifier: './side-effect.ts' },
    ]);
  });
});

describe('resolveSpecifier', () => {
  it('resolves relative specifiers to repository paths and leaves packages alone', () => {
    expect(resolveSpecifier('acceptance/support/dod.ts', '../../lab/index.ts')).toBe('lab/index.ts');
    expect(resolveSpecifier('helpers/tls/index.ts', './pem.ts')).toBe('helpers/tls/pem.ts');
    expect(resolveSpecifier('helpers/tls/index.ts', 'node:tls')).toBeUndefined();
    expect(resolveSpecifier('helpers/tls/index.ts', 'undici')).toBeUndefined();
  });
});

describe('checkDependencies', () => {
  it('fails a spec that imports from lab/, naming the file, the line, the specifier and the rules', () => {
    const violations = check(file('acceptance/c9-new.spec.ts', "import { expect } from 'vitest';", "import { SABOTAGES } from '../lab/sabotage.ts';"));
    expect(violations).toEqual([
      `acceptance/c9-new.spec.ts:2 imports "../lab/sabotage.ts" (lab/sabotage.ts), against: acceptance/** imports nothing from lab/ or cli/; ${LAB_IMPORT_RULE}`,
    ]);
  });

  it('fails a helper that imports the machines layer', () => {
    expect(check(file('helpers/ssh/index.ts', "import { resolveTarget } from '../../machines/resolve.ts';"))).toEqual([
      'helpers/ssh/index.ts:1 imports "../../machines/resolve.ts" (machines/resolve.ts), against: helpers/** imports nothing from machines/, lab/, acceptance/, cli/, test/',
    ]);
  });

  it('fails a dynamic import as a static one', () => {
    expect(check(file('acceptance/support/global-cold.ts', '', "const { bringUp } = await import('../../cli/lab.ts');"))).toEqual([
      'acceptance/support/global-cold.ts:2 imports "../../cli/lab.ts" (cli/lab.ts), against: acceptance/** imports nothing from lab/ or cli/',
    ]);
  });

  it('keeps helpers/common below the other helpers', () => {
    expect(check(file('helpers/common/wait.ts', "import { log } from './log.ts';", "import type { HostChannel } from '../machines/host.ts';"))).toEqual([
      'helpers/common/wait.ts:2 imports "../machines/host.ts" (helpers/machines/host.ts), against: helpers/common/** imports nothing from the rest of helpers/, nor from machines/, lab/, acceptance/, cli/, test/',
    ]);
  });

  it('keeps the machines layer below acceptance, and the lab below the machines layer', () => {
    expect(
      check(
        file('machines/run-context.ts', "import { dodItem } from '../acceptance/support/dod.ts';"),
        file('lab/index.ts', "import { SSH } from '../machines/providers/ssh.ts';"),
      ),
    ).toEqual([
      'machines/run-context.ts:1 imports "../acceptance/support/dod.ts" (acceptance/support/dod.ts), against: machines/** imports nothing from acceptance/, cli/, test/',
      'lab/index.ts:1 imports "../machines/providers/ssh.ts" (machines/providers/ssh.ts), against: lab/** imports nothing from machines/, acceptance/, cli/',
    ]);
  });

  it("lets only the lab provider, the CLI lab command and the harness's own tests of the lab (test/e2e, test/selftest) import lab/ from outside it", () => {
    const importsLab = (path: string) => file(path, `import { labUp } from '${'../'.repeat(path.split('/').length - 1)}lab/index.ts';`);
    expect(
      check(
        importsLab('machines/providers/lab.ts'),
        importsLab('cli/lab.ts'),
        importsLab('lab/sabotage.ts'),
        importsLab('test/e2e/support.ts'),
        importsLab('test/selftest/sabotage-matrix.test.ts'),
      ),
    ).toEqual([]);
    expect(check(importsLab('machines/providers/incus.ts'), importsLab('cli/main.ts'), importsLab('test/ci/run.test.ts'))).toEqual([
      `machines/providers/incus.ts:1 imports "../../lab/index.ts" (lab/index.ts), against: ${LAB_IMPORT_RULE}`,
      `cli/main.ts:1 imports "../lab/index.ts" (lab/index.ts), against: ${LAB_IMPORT_RULE}`,
      `test/ci/run.test.ts:1 imports "../../lab/index.ts" (lab/index.ts), against: ${LAB_IMPORT_RULE}`,
    ]);
    expect(LAB_IMPORT_RULE).toMatch(/test\/e2e\/\*\* \(the end-to-end scenarios run cold runs in the lab/);
  });

  it('keeps reporting/ on helpers/common alone', () => {
    expect(
      check(
        file(
          'reporting/run-record.ts',
          "import { DOD_ITEMS } from './dod-items.ts';",
          "import { redact } from '../helpers/common/redact.ts';",
          "import { itemLabel } from '../acceptance/support/dod.ts';",
        ),
        file(
          'reporting/verdict.ts',
          "import type { RunContext } from '../machines/run-context.ts';",
          "import { showServedChain } from '../helpers/tls/show.ts';",
        ),
      ),
    ).toEqual([
      'reporting/run-record.ts:3 imports "../acceptance/support/dod.ts" (acceptance/support/dod.ts), against: reporting/** imports nothing from acceptance/, cli/, test/, lab/, machines/, nor from helpers/ beyond helpers/common/',
      'reporting/verdict.ts:1 imports "../machines/run-context.ts" (machines/run-context.ts), against: reporting/** imports nothing from acceptance/, cli/, test/, lab/, machines/, nor from helpers/ beyond helpers/common/',
      'reporting/verdict.ts:2 imports "../helpers/tls/show.ts" (helpers/tls/show.ts), against: reporting/** imports nothing from acceptance/, cli/, test/, lab/, machines/, nor from helpers/ beyond helpers/common/',
    ]);
  });

  it('keeps the layers below reporting/ from importing it', () => {
    expect(
      check(
        file('machines/kept.ts', "import { RUN_RECORD_FILE } from '../reporting/run-record-io.ts';"),
        file('helpers/common/log.ts', "import { worstVerdict } from '../../reporting/verdict.ts';"),
      ),
    ).toEqual([
      'machines/kept.ts:1 imports "../reporting/run-record-io.ts" (reporting/run-record-io.ts), against: helpers/**, machines/** and lab/** import nothing from reporting/',
      'helpers/common/log.ts:1 imports "../../reporting/verdict.ts" (reporting/verdict.ts), against: helpers/**, machines/** and lab/** import nothing from reporting/',
    ]);
  });

  it('lets cli/ import of acceptance/ only what it runs, and nothing of test/', () => {
    const cliRule =
      "cli/** imports nothing from test/, and from acceptance/ only acceptance/support/ci.ts (the bench times a !testme build through the specs' own client of cc-ci's faces) and acceptance/support/session-pool.ts (accept watch runs its Vitest session on the specs' kept worker)";
    expect(
      check(
        file('cli/bench.ts', "import { openCi } from '../acceptance/support/ci.ts';", "import { latestRunRecord } from '../reporting/run-record-io.ts';"),
        file('cli/watch.ts', "const { sessionPool } = await import('../acceptance/support/session-pool.ts');"),
      ),
    ).toEqual([]);
    expect(
      check(
        file('cli/report.ts', "import { renderSummary } from '../acceptance/support/evidence-dir.ts';"),
        file('cli/report.test.ts', "import { sampleRecord } from '../test/e2e/support.ts';"),
      ),
    ).toEqual([
      `cli/report.ts:1 imports "../acceptance/support/evidence-dir.ts" (acceptance/support/evidence-dir.ts), against: ${cliRule}`,
      `cli/report.test.ts:1 imports "../test/e2e/support.ts" (test/e2e/support.ts), against: ${cliRule}`,
    ]);
  });

  it('lets only tests, and other test-only modules, import a test-only module (testing/, *.fixture.ts)', () => {
    expect(
      check(
        file('helpers/ssh/ssh.test.ts', "import { startSocks } from '../common/testing/fake-socks.ts';"),
        file('acceptance/support/reports.test.ts', "import { sampleRecord } from '../../reporting/run-record.fixture.ts';"),
        file('test/e2e/credentials.test.ts', "import { leakedFiles } from '../../helpers/common/testing/leak-scan.ts';"),
        file('helpers/common/testing/leak-scan.ts', "import { plantedForms } from './planted-forms.ts';", "import { secretForms } from '../secret-forms.ts';"),
      ),
    ).toEqual([]);
    expect(
      check(
        file('helpers/ssh/index.ts', "import { startSocks } from '../common/testing/fake-socks.ts';"),
        file('cli/report.ts', "import { sampleRecord } from '../reporting/run-record.fixture.ts';"),
        file('acceptance/c3-one-out-of-band-secret.spec.ts', "import { plantedForms } from '../helpers/common/testing/planted-forms.ts';"),
      ),
    ).toEqual([
      `helpers/ssh/index.ts:1 imports "../common/testing/fake-socks.ts" (helpers/common/testing/fake-socks.ts), against: ${TEST_ONLY_RULE}`,
      `cli/report.ts:1 imports "../reporting/run-record.fixture.ts" (reporting/run-record.fixture.ts), against: ${TEST_ONLY_RULE}`,
      `acceptance/c3-one-out-of-band-secret.spec.ts:1 imports "../helpers/common/testing/planted-forms.ts" (helpers/common/testing/planted-forms.ts), against: ${TEST_ONLY_RULE}`,
    ]);
    expect(isTestOnly('helpers/common/testing.ts')).toBe(false);
  });

  it('keeps what a session keeps loaded of helpers/ off the modules it evaluates afresh (helpers/ssh)', () => {
    expect(
      check(
        file('helpers/ssh/connection.ts', "import { dial } from '../common/dial.ts';"),
        file('helpers/ssh/ssh.test.ts', "import { openSsh } from './connection.ts';"),
        file('machines/ssh-host.ts', "import { openSsh } from '../helpers/ssh/index.ts';"),
      ),
    ).toEqual([]);
    expect(check(file('helpers/runbook/run.ts', "import { openSsh } from '../ssh/index.ts';"))).toEqual([
      `helpers/runbook/run.ts:1 imports "../ssh/index.ts" (helpers/ssh/index.ts), against: ${SESSION_KEPT_RULE}`,
    ]);
  });

  it('allows the way imports flow', () => {
    expect(
      check(
        file('acceptance/c1.spec.ts', "import { x } from '../machines/run-context.ts';", "import { y } from '../helpers/git/index.ts';"),
        file('machines/providers/lab.ts', "import { labUp } from '../../lab/index.ts';", "import { z } from '../../helpers/incus/client.ts';"),
        file('helpers/git/index.ts', "import { w } from '../common/exec.ts';", "import { execa } from 'execa';"),
        file('lab/repos.ts', "import { v } from '../helpers/sops/index.ts';"),
        file('acceptance/support/dod-reporter.ts', "import { itemRecord } from '../../reporting/run-record.ts';"),
        file('test/selftest/judge.ts', "import type { Verdict } from '../../reporting/verdict.ts';"),
      ),
    ).toEqual([]);
  });
});

describe('reads of lab/ by path', () => {
  it('finds paths into lab/ built with join, resolve and new URL, and nothing else', () => {
    const text = [
      "const a = join(import.meta.dirname, '../../lab/base/services');",
      "const b = path.resolve(ROOT, 'lab', 'image');",
      "const c = new URL('../lab/forge.ts', import.meta.url);",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text for the parser, with a template literal in it
      'const d = posix.join(`${ROOT}/lab/base`, name);',
      "const e = join(stateDir, 'laboratory', 'x');",
      "runAccept(['lab', 'up']);",
      "const f = 'lab/base/services';",
      "if (config.target === 'lab') join(dir, 'evidence');",
    ].join('\n');
    expect(labPathReadsOf('x.ts', text)).toEqual([
      { line: 1, specifier: '../../lab/base/services' },
      { line: 2, specifier: 'lab' },
      { line: 3, specifier: '../lab/forge.ts' },
      // biome-ignore lint/suspicious/noTemplateCurlyInString: `${…}` is how labPathReadsOf shows a template's placeholder
      { line: 4, specifier: '${…}/lab/base' },
    ]);
  });

  it('fails a file outside lab/ that reads it by path, unless it is listed with its reason', () => {
    const reads = (path: string) => file(path, '', "const SERVICES = join(import.meta.dirname, '../../lab/base/services');");
    expect(checkLabPathReads([reads('helpers/common/testing/standins.ts'), reads('lab/base/x.ts')])).toEqual([]);
    expect(checkLabPathReads([reads('helpers/forge/index.ts')]).map(describeViolation)).toEqual([
      `helpers/forge/index.ts:2 reads "../../lab/base/services" (lab/base/services), against: ${LAB_PATH_READ_RULE}`,
    ]);
  });
});

describe('the repository', () => {
  it('follows every dependency rule', async () => {
    const violations = checkDependencies(await trackedSources(REPO_ROOT));
    expect(violations.map(describeViolation), 'imports that break the dependency rules (test/deps/rules.ts)').toEqual([]);
  });

  it('keeps no test-only module in helpers/common itself: each module there has an importer that is no test', async () => {
    const files = await trackedSources(REPO_ROOT);
    const importers = new Map<string, string[]>();
    for (const source of files) {
      for (const { specifier } of importsOf(source.path, source.text)) {
        const target = resolveSpecifier(source.path, specifier);
        if (target) importers.set(target, [...(importers.get(target) ?? []), source.path]);
      }
    }
    const common = files.map((source) => source.path).filter((path) => /^helpers\/common\/[^/]+\.ts$/.test(path) && !isTest(path));
    const testOnly = common.filter((path) => importers.has(path) && importers.get(path)!.every(isTest));
    expect(testOnly, 'modules of helpers/common that only tests import: move them to helpers/common/testing/').toEqual([]);
  });

  it('keeps each index.ts a short front door: an implementation past 150 lines is named by what it holds', async () => {
    const long = (await trackedSources(REPO_ROOT))
      .filter((source) => source.path.endsWith('/index.ts') && source.text.split('\n').length > 150)
      .map((source) => `${source.path}: ${source.text.split('\n').length} lines`);
    expect(long, 'move the implementation to a file named by what it holds, and re-export it from index.ts (docs/architecture.md)').toEqual([]);
  });

  it('reads lab/ by path only where LAB_PATH_READERS says, and each of them still does', async () => {
    const files = await trackedSources(REPO_ROOT);
    expect(checkLabPathReads(files).map(describeViolation), 'reads of lab/ by path (test/deps/rules.ts)').toEqual([]);
    const readers = files
      .filter((source) => labPathReadsOf(source.path, source.text).length > 0 && !source.path.startsWith('lab/'))
      .map((source) => source.path);
    expect(readers.sort()).toEqual(Object.keys(LAB_PATH_READERS).sort());
  });
});

/**
 * The dependency rules of the repository, and a checker for them: imports flow one way,
 * acceptance → machines → helpers → helpers/common, and the embedded lab is reached only
 * through its provider and the CLI's lab command. reporting/ (the verdicts, the run record and
 * its renderings) stands on helpers/common alone, beside machines/; acceptance/, cli/ and test/
 * read the record through it. Specifiers are read with the TypeScript parser (already a dev
 * dependency), so an import in a comment or a string is not one. Paths into lab/ built in code
 * (join, resolve, new URL) are checked too: only the files of LAB_PATH_READERS read lab/ by path.
 * Test-only modules (a testing/ folder, *.fixture.ts) are imported by tests alone. What a
 * long-lived session keeps loaded of helpers/ imports nothing it evaluates afresh each run.
 */
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import ts from 'typescript';
import { FRESH_EACH_RUN } from '../../acceptance/support/session-pool.ts';
import { succeed } from '../../helpers/common/exec.ts';

export interface SourceFile {
  /** Relative to the repository root, with forward slashes. */
  path: string;
  text: string;
}

export interface ImportReference {
  line: number;
  specifier: string;
}

export interface DependencyRule {
  /** The rule as a reader would state it; violations quote it. */
  text: string;
  /** Whether an import of `target` by `importer` (both repository paths) breaks the rule. */
  forbids(importer: string, target: string): boolean;
}

export interface Violation {
  file: string;
  line: number;
  specifier: string;
  /** The repository path the specifier resolves to. */
  resolved: string;
  rules: string[];
  /** A path read (labPathReadsOf) rather than an import. */
  read?: true;
}

const under = (path: string, ...dirs: string[]) => dirs.some((dir) => path.startsWith(`${dir}/`));

/** The lab's only importers besides itself: its provider and the CLI's lab command. */
export const LAB_IMPORTERS = ['machines/providers/lab.ts', 'cli/lab.ts'];

/**
 * The harness's own tests of the lab, which may import it directly, each folder with its reason:
 * they run cold runs in the lab and must lease its worker projects, read its state and its
 * catalogue of sabotages. The specs (acceptance/) never may.
 */
export const LAB_TEST_IMPORTERS: Record<string, string> = {
  'test/e2e': 'the end-to-end scenarios run cold runs in the lab: they lease its worker projects and read its settings, state and forge logs',
  'test/selftest': "the sabotage matrix runs one cold run per sabotage of the lab's catalogue",
};

/**
 * What cli/ may import of acceptance/: what it runs, never what it reports. The run record, the
 * verdicts and their renderings come from reporting/.
 */
export const CLI_ACCEPTANCE_IMPORTS: Record<string, string> = {
  'acceptance/support/ci.ts': "the bench times a !testme build through the specs' own client of cc-ci's faces",
  'acceptance/support/session-pool.ts': "accept watch runs its Vitest session on the specs' kept worker",
};

/**
 * Files outside lab/ that read files under it by path (not by import), each with its reason.
 * Nothing else outside lab/ may: checkLabPathReads.
 */
export const LAB_PATH_READERS: Record<string, string> = {
  'helpers/common/testing/standins.ts': "the unit tests run the lab's own stand-in services (lab/base/services) on this machine",
  'helpers/sops/sops.test.ts': "the sops codec is checked against the lab's own installer (lab/base/pkgs/sops-install-secrets.py)",
};

export const LAB_PATH_READ_RULE = `lab/ is read by path from outside it only by ${Object.entries(LAB_PATH_READERS)
  .map(([path, why]) => `${path} (${why})`)
  .join(' and ')}`;

export const LAB_IMPORT_RULE = `lab/ is imported only by lab/** itself, ${LAB_IMPORTERS.join(' and ')}, and the harness's own tests of the lab: ${Object.entries(
  LAB_TEST_IMPORTERS,
)
  .map(([dir, why]) => `${dir}/** (${why})`)
  .join(' and ')}`;

/** A test: a *.test.ts file anywhere, or any file under test/ (the harness's own scenarios and checks). */
export function isTest(path: string): boolean {
  return path.endsWith('.test.ts') || under(path, 'test');
}

/**
 * A module that serves tests only, named so: in a folder `testing/` (fakes, stand-ins, canaries:
 * helpers/common/testing/, helpers/git/testing/, helpers/https/testing/) or named `*.fixture.ts`
 * (sample data: reporting/run-record.fixture.ts, machines/system-profile.fixture.ts).
 */
export function isTestOnly(path: string): boolean {
  return path.split('/').slice(0, -1).includes('testing') || path.endsWith('.fixture.ts');
}

/** Whether a long-lived session (`accept watch`) evaluates this module afresh in each run, rather than keeping it loaded. */
export function freshEachRun(path: string): boolean {
  return under(path, ...FRESH_EACH_RUN);
}

export const SESSION_KEPT_RULE = `a module of helpers/ that a long-lived session keeps loaded imports no module of helpers/ it evaluates afresh in each run (${FRESH_EACH_RUN.filter((dir) => dir.startsWith('helpers/')).join(', ')}; FRESH_EACH_RUN in acceptance/support/session-pool.ts): it would keep a past run's copy; the layers above helpers/ are beyond its reach by the rules above`;

export const TEST_ONLY_RULE =
  'a test-only module (in a testing/ folder, or named *.fixture.ts) is imported only by tests (*.test.ts, test/**) and by other test-only modules';

export const RULES: readonly DependencyRule[] = [
  {
    text: 'helpers/common/** imports nothing from the rest of helpers/, nor from machines/, lab/, acceptance/, cli/, test/',
    forbids: (importer, target) =>
      under(importer, 'helpers/common') && !under(target, 'helpers/common') && under(target, 'helpers', 'machines', 'lab', 'acceptance', 'cli', 'test'),
  },
  {
    text: 'helpers/** imports nothing from machines/, lab/, acceptance/, cli/, test/',
    forbids: (importer, target) => under(importer, 'helpers') && under(target, 'machines', 'lab', 'acceptance', 'cli', 'test'),
  },
  {
    text: 'machines/** imports nothing from acceptance/, cli/, test/',
    forbids: (importer, target) => under(importer, 'machines') && under(target, 'acceptance', 'cli', 'test'),
  },
  {
    text: 'lab/** imports nothing from machines/, acceptance/, cli/',
    forbids: (importer, target) => under(importer, 'lab') && under(target, 'machines', 'acceptance', 'cli'),
  },
  {
    text: 'acceptance/** imports nothing from lab/ or cli/',
    forbids: (importer, target) => under(importer, 'acceptance') && under(target, 'lab', 'cli'),
  },
  {
    text: LAB_IMPORT_RULE,
    forbids: (importer, target) => under(target, 'lab') && !under(importer, 'lab', ...Object.keys(LAB_TEST_IMPORTERS)) && !LAB_IMPORTERS.includes(importer),
  },
  {
    text: 'reporting/** imports nothing from acceptance/, cli/, test/, lab/, machines/, nor from helpers/ beyond helpers/common/',
    forbids: (importer, target) =>
      under(importer, 'reporting') &&
      (under(target, 'acceptance', 'cli', 'test', 'lab', 'machines') || (under(target, 'helpers') && !under(target, 'helpers/common'))),
  },
  {
    text: 'helpers/**, machines/** and lab/** import nothing from reporting/',
    forbids: (importer, target) => under(importer, 'helpers', 'machines', 'lab') && under(target, 'reporting'),
  },
  {
    text: SESSION_KEPT_RULE,
    forbids: (importer, target) =>
      under(importer, 'helpers') && under(target, 'helpers') && !isTest(importer) && !isTestOnly(importer) && !freshEachRun(importer) && freshEachRun(target),
  },
  {
    text: TEST_ONLY_RULE,
    forbids: (importer, target) => isTestOnly(target) && !isTest(importer) && !isTestOnly(importer),
  },
  {
    text: `cli/** imports nothing from test/, and from acceptance/ only ${Object.entries(CLI_ACCEPTANCE_IMPORTS)
      .map(([path, why]) => `${path} (${why})`)
      .join(' and ')}`,
    forbids: (importer, target) => under(importer, 'cli') && (under(target, 'test') || (under(target, 'acceptance') && !(target in CLI_ACCEPTANCE_IMPORTS))),
  },
];

/** Every module specifier of a file: `import … from`, `export … from`, `import()` and `import('…')` types. */
export function importsOf(path: string, text: string): ImportReference[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: ImportReference[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, specifier: node.text });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const PATH_CALLS = new Set(['join', 'resolve']);
const PATH_MODULES = new Set(['path', 'posix', 'win32']);

/**
 * Paths into lab/ built in code: a string argument of join(…) or resolve(…) (bare, or as path.,
 * posix.) or of new URL(…) with a path segment `lab` (`'../../lab/base/services'`, `'lab'`,
 * `` `${root}/lab/x` ``). A path held in a variable, or read relative to the working directory,
 * is not seen.
 */
export function labPathReadsOf(path: string, text: string): ImportReference[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: ImportReference[] = [];
  const textOf = (node: ts.Node): string | undefined => {
    if (ts.isStringLiteralLike(node)) return node.text;
    if (ts.isTemplateExpression(node)) return [node.head.text, ...node.templateSpans.map((span) => span.literal.text)].join('\0');
    return undefined;
  };
  const buildsPath = (callee: ts.Expression) =>
    (ts.isIdentifier(callee) && PATH_CALLS.has(callee.text)) ||
    (ts.isPropertyAccessExpression(callee) &&
      PATH_CALLS.has(callee.name.text) &&
      ts.isIdentifier(callee.expression) &&
      PATH_MODULES.has(callee.expression.text));
  const visit = (node: ts.Node): void => {
    const call = ts.isCallExpression(node) && buildsPath(node.expression);
    const url = ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'URL';
    if (call || url) {
      for (const argument of (node as ts.CallExpression | ts.NewExpression).arguments ?? []) {
        const value = textOf(argument);
        if (value?.split(/[/\0]/).includes('lab')) {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: `${…}` stands for a template's placeholder in the path shown
          found.push({ line: source.getLineAndCharacterOfPosition(argument.getStart(source)).line + 1, specifier: value.replaceAll('\0', '${…}') });
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Path reads into lab/ from outside it by a file not in `readers`. */
export function checkLabPathReads(files: readonly SourceFile[], readers: Record<string, string> = LAB_PATH_READERS): Violation[] {
  const violations: Violation[] = [];
  for (const file of files) {
    if (file.path.startsWith('lab/') || file.path in readers) continue;
    for (const { line, specifier } of labPathReadsOf(file.path, file.text)) {
      violations.push({
        file: file.path,
        line,
        specifier,
        resolved: resolveSpecifier(file.path, specifier) ?? specifier,
        rules: [LAB_PATH_READ_RULE],
        read: true,
      });
    }
  }
  return violations;
}

/** The repository path a relative specifier names; undefined for packages and `node:` modules. */
export function resolveSpecifier(importer: string, specifier: string): string | undefined {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  return posix.normalize(posix.join(posix.dirname(importer), specifier));
}

export function checkDependencies(files: readonly SourceFile[], rules: readonly DependencyRule[] = RULES): Violation[] {
  const violations: Violation[] = [];
  for (const file of files) {
    for (const { line, specifier } of importsOf(file.path, file.text)) {
      const resolved = resolveSpecifier(file.path, specifier);
      if (resolved === undefined) continue;
      const broken = rules.filter((rule) => rule.forbids(file.path, resolved)).map((rule) => rule.text);
      if (broken.length > 0) violations.push({ file: file.path, line, specifier, resolved, rules: broken });
    }
  }
  return violations;
}

export function describeViolation(violation: Violation): string {
  return `${violation.file}:${violation.line} ${violation.read ? 'reads' : 'imports'} ${JSON.stringify(violation.specifier)} (${violation.resolved}), against: ${violation.rules.join('; ')}`;
}

/** Every tracked .ts file of the repository at `root`, as git lists it; one deleted but not yet committed is no code. */
export async function trackedSources(root: string): Promise<SourceFile[]> {
  const { stdout } = await succeed('git', ['ls-files', '-z', '--', '*.ts'], { cwd: root });
  const files = await Promise.all(
    stdout
      .split('\0')
      .filter(Boolean)
      .map(async (path) => {
        const text = await readFile(join(root, path), 'utf8').catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return undefined;
          throw error;
        });
        return text === undefined ? [] : [{ path, text }];
      }),
  );
  return files.flat();
}

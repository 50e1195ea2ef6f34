import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestModule, Vitest } from 'vitest/node';
import { forgetSecrets, registerSecret } from '../../helpers/common/redact.ts';
import type { RunContext } from './context.ts';
import { environmentEntries, newRunRecord, targetRecord } from './evidence-dir.ts';
import TargetJUnitReporter, { junitProperties } from './junit-reporter.ts';

function run(faced: Partial<RunContext['faced']> = {}): RunContext {
  return {
    runId: 'r1',
    mode: 'cold',
    target: { kind: 'incus', socks: 'socks5://127.0.0.1:1055' },
    faced: { kind: 'incus', server: 'https://b1:8443', instanceType: 'virtual-machine', standIns: [], notes: [], ...faced },
    instance: { name: 'accept-r1', project: 'terraform-ci', createdAt: '', expiresAt: '', createdInThisRun: true },
  } as unknown as RunContext;
}

/** Just enough of Vitest for its JUnit reporter: a root, a logger, and the projects' provided context. */
function fakeVitest(root: string, provided: RunContext | undefined): Vitest {
  return {
    config: { root },
    logger: { log: () => {} },
    projects: [{ name: 'cold', getProvidedContext: () => ({ run: provided }) }],
    getProjectByName: () => undefined,
  } as unknown as Vitest;
}

/** One spec file with one passing test, as Vitest hands it to reporters. */
function oneModule(root: string): TestModule {
  const file = {
    type: 'suite',
    name: 'acceptance/c2-cert.spec.ts',
    filepath: join(root, 'acceptance/c2-cert.spec.ts'),
    mode: 'run',
    tasks: [] as unknown[],
    result: { state: 'pass', duration: 5 },
  };
  file.tasks.push({ type: 'test', name: 'C2 cert in git > serves the git cert', mode: 'run', result: { state: 'pass', duration: 3 }, annotations: [], file });
  return { task: file } as unknown as TestModule;
}

describe('the JUnit reporter names the target', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'accept-junit-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function junitOf(provided: RunContext | undefined): Promise<string> {
    const reporter = new TargetJUnitReporter({ outputFile: 'junit.xml' });
    await reporter.onInit(fakeVitest(dir, provided));
    await reporter.onTestRunEnd([oneModule(dir)]);
    return readFile(join(dir, 'junit.xml'), 'utf8');
  }

  it("writes the run's target as the first child of each testsuite, as Vitest's own writer lays out elements", async () => {
    const xml = await junitOf(run());
    const suite = /<testsuite [^>]*>\n([\s\S]*?)<\/testsuite>/.exec(xml)?.[1] ?? '';
    expect(suite.trimStart().startsWith('<properties>')).toBe(true);
    expect(suite.indexOf('</properties>')).toBeLessThan(suite.indexOf('<testcase'));
    expect(xml).toContain('<property name="target" value="incus https://b1:8443 (virtual-machine)">');
    expect(xml).toContain('<property name="target.kind" value="incus">');
    expect(xml).toContain('<property name="target.server" value="https://b1:8443">');
    expect(xml).toContain('<property name="target.instance-type" value="virtual-machine">');
    expect(xml).toContain('<property name="target.stand-ins" value="none">');
    expect(xml).toContain('<property name="incus.project" value="terraform-ci">');
    expect(xml).toContain('<testcase classname="acceptance/c2-cert.spec.ts" name="C2 cert in git &gt; serves the git cert"');
  });

  it('names the lab stand-ins and notes, XML-escaped', async () => {
    const xml = await junitOf(
      run({ kind: 'lab', instanceType: 'container', standIns: ['nginx, not Traefik', 'stand-in forge & Drone <Python>'], notes: ['sabotage "c2"'] }),
    );
    expect(xml).toContain('<property name="target" value="lab (stand-ins: nginx, not Traefik; stand-in forge &amp; Drone &lt;Python&gt;)">');
    expect(xml).toContain('<property name="target.notes" value="sabotage &quot;c2&quot;">');
  });

  it('redacts a registered secret in any value', async () => {
    registerSecret('tok-in-the-server-name-123');
    const xml = await junitOf(run({ server: 'https://tok-in-the-server-name-123@b1:8443' }));
    expect(xml).not.toContain('tok-in-the-server-name-123');
    expect(xml).toContain('<property name="target.server"');
    forgetSecrets();
  });

  it('writes no properties when global setup provided no run (the harness’s own tests)', async () => {
    const xml = await junitOf(undefined);
    expect(xml).not.toContain('<properties>');
    expect(xml).toContain('<testsuite name="acceptance/c2-cert.spec.ts"');
  });

  it("carries the same target entries as Allure's environment", async () => {
    const context = run({ notes: ['a note'] });
    const record = { ...(await newRunRecord('r1', undefined, 'cold')), target: targetRecord(context) };
    const environment = new Map(environmentEntries(record, undefined));
    expect(junitProperties(context).length).toBeGreaterThan(5);
    for (const [name, value] of junitProperties(context)) expect(environment.get(name), name).toBe(value);
  });
});

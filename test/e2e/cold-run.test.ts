/**
 * The walking skeleton, end to end on the embedded lab: a cold run passes and leaves nothing,
 * a broken lab makes the right spec fail for the right reason, and every teardown path holds.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../helpers/common/config.ts';
import { waitFor } from '../../helpers/common/wait.ts';
import { succeed } from '../../helpers/common/exec.ts';
import { SIGNATURE_NAMESPACE } from '../../helpers/evidence/attestation.ts';
import { secretsInTexts } from '../../helpers/common/secret-forms.ts';
import { latestRunRecord } from '../../reporting/run-record-io.ts';
import { VERDICT_KEYS, verdictsByKey } from '../../reporting/run-record.ts';
import { summaryPath } from '../../reporting/dod-summary.ts';
import { decryptSops, parseAgeIdentities } from '../../helpers/sops/index.ts';
import { labPaths } from '../../lab/state.ts';
import { filesUnder, leftoversOf, readText, runAccept, throwawaysOf, type ChildRun } from './support.ts';

const labDir = loadConfig().lab.dir;

/** The lab's decrypted sops values, by key: searched in every form (helpers/common/secret-forms.ts). */
async function labSecretValues(): Promise<Record<string, string>> {
  const paths = labPaths(labDir);
  const identities = parseAgeIdentities(await readFile(paths.bootstrapKey, 'utf8'), paths.bootstrapKey);
  const document = await decryptSops(await readFile(join(paths.workDir, 'cc-ci-secrets', 'secrets.yaml'), 'utf8'), { identities });
  return document.data as Record<string, string>;
}

async function expectNothingLeft(run: ChildRun): Promise<void> {
  expect(throwawaysOf(run).length, `the run created no throwaway:\n${run.output}`).toBeGreaterThan(0);
  // The reaper may still be finishing when the run has exited.
  await waitFor(
    `the run's throwaway (${throwawaysOf(run).join(', ')}) to be gone`,
    async () => {
      const left = await leftoversOf(run);
      return left.length === 0 || { done: false, saw: left };
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

describe('cold run on the lab', () => {
  // Also the sabotage matrix's baseline: what a sabotaged run is judged against is an unbroken lab passing everything.
  test('passes every item, writes the summary, JUnit and Allure evidence without secrets, and leaves no throwaway', async () => {
    // With D8's optional reboot check: the baseline shows it passing, d8-switch-not-the-boot-default failing.
    const run = await runAccept(['run'], { env: { ACCEPT_REBOOT_CHECK: '1' } });
    const verdicts = verdictsByKey(await latestRunRecord(run.reportsDir));
    const notPassing = VERDICT_KEYS.filter((item) => verdicts.get(item) !== 'PASS').map((item) => `${item}=${verdicts.get(item) ?? 'missing'}`);
    expect(notPassing, run.output).toEqual([]);
    expect(run.exitCode, run.output).toBe(0);
    // Each check names the machine it observed: the served chain is the throwaway's.
    expect(run.stdout).toMatch(
      /\| C2 cert in git \| PASS \| \[accept-\S+ \(the throwaway of this run\)\] served leaf = git wildcard_cert, SHA-256 [0-9A-F:]{95}/,
    );

    const summary = await readText(summaryPath(run.reportsDir));
    expect(summary).toContain('| C2 cert in git | PASS |');
    // A lab PASS never reads like a real one: the header names what the run faced.
    expect(summary).toMatch(
      /^target: lab \(stand-ins: an Incus container, not a VM; .*nginx, not Traefik; .*stand-in forge \(Python, one per machine, on the lab host outside it\); stand-in Drone and bridge/m,
    );
    expect(await readText(join(run.reportsDir, 'allure-results', 'environment.properties'))).toMatch(/^target\.kind ?= ?lab$/m);
    const record = await latestRunRecord(run.reportsDir);
    expect(record.items.find((item) => item.id === 'C2')?.verdict).toBe('PASS');
    expect(record.cleanup?.verdict).toBe('PASS');
    const reboot = record.items.find((item) => item.id === 'D8')?.checks.find((check) => check.name.startsWith('live half, strongest form'));
    expect(reboot?.evidence, run.output).toMatch(/rebooted: running, \/run\/booted-system = \/run\/current-system = \/nix\/store\/\S+, the clean build/);
    expect(await readText(join(run.reportsDir, 'junit.xml'))).toContain('C2 cert in git');

    const files = await filesUnder(join(run.reportsDir, 'allure-results'));
    const results = await Promise.all(files.filter((file) => file.endsWith('-result.json')).map(async (file) => JSON.parse(await readText(file))));
    expect(results.length).toBeGreaterThanOrEqual(4);
    const c2 = results.filter((result) =>
      result.labels?.some((label: { name: string; value: string }) => label.name === 'feature' && label.value === 'C2 cert in git'),
    );
    expect(c2.length).toBe(6);
    expect(c2.some((result) => result.steps?.length > 0)).toBe(true);
    const attachments = files.filter((file) => file.includes('-attachment'));
    expect(attachments.length).toBeGreaterThan(0);
    expect((await Promise.all(attachments.map(readText))).join('\n')).toMatch(/"fingerprint": "[0-9A-F:]{95}"/);

    // Nothing decrypted may reach any report file.
    const secrets = await labSecretValues();
    const texts: Array<{ where: string; text: string }> = [];
    for (const file of await filesUnder(run.reportsDir)) {
      const text = await readText(file);
      expect(text.includes('PRIVATE KEY'), `${file} holds a private key`).toBe(false);
      expect(text.includes('AGE-SECRET-KEY-1'), `${file} holds an age identity`).toBe(false);
      texts.push({ where: file, text });
    }
    // Whole, by line and field, and base64, hex, percent-, JSON- or HTML-escaped, all in one pass: names and forms only.
    expect(secretsInTexts(secrets, texts), 'report files holding decrypted secret values').toEqual([]);

    // The adversary signs this run's evidence and anyone verifies it: as a lab run, and never as b1's.
    const evidenceDir = join(run.reportsDir, 'evidence', record.runId);
    const keys = await mkdtemp(join(tmpdir(), 'accept-e2e-attest-'));
    try {
      await succeed('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'adversary', '-f', join(keys, 'adversary')]);
      const [type, blob] = (await readText(join(keys, 'adversary.pub'))).split(' ');
      await writeFile(join(keys, 'allowed_signers'), `adversary@example namespaces="${SIGNATURE_NAMESPACE}" ${type} ${blob}\n`);
      const attested = await runAccept(['attest', evidenceDir, '--key', join(keys, 'adversary')]);
      expect(attested.exitCode, attested.output).toBe(0);
      expect(
        secretsInTexts(secrets, [{ where: 'attestation.json', text: await readText(join(evidenceDir, 'attestation.json')) }]),
        'the statement holding decrypted secret values',
      ).toEqual([]);
      const verify = (...args: string[]) => runAccept(['verify', evidenceDir, '--allowed-signers', join(keys, 'allowed_signers'), '--items', 'C1-C7', ...args]);
      const asLab = await verify('--target', 'lab');
      expect(asLab.exitCode, asLab.output).toBe(0);
      expect(asLab.stdout).toContain(record.runId);
      const asB1 = await verify('--target', 'incus');
      expect(asB1.exitCode, asB1.output).toBe(1);
      expect(asB1.stdout).toMatch(/target.*lab.*incus|target.*incus.*lab/);
    } finally {
      await rm(keys, { recursive: true, force: true });
    }
    await expectNothingLeft(run);
  });
});

// Breaking the lab on purpose, spec by spec, is the sabotage matrix's job (test/selftest).

describe('teardown holds on every path', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    test(`${signal} during the runbook leaves no throwaway`, async () => {
      let sent = false;
      const run = await runAccept(['run'], {
        onOutput: (output, child) => {
          // The throwaway's runbook: the lab's production stand-in runs the same one when it converges first.
          if (!sent && /Creating throwaway[\s\S]*Runbook step 3\/3/.test(output)) {
            sent = true;
            process.kill(-child.pid, signal);
          }
        },
      });
      expect(sent, run.output).toBe(true);
      expect(run.exitCode === 0, run.output).toBe(false);
      // A catchable signal is handled by the run itself, not left to the reaper.
      if (signal !== 'SIGKILL') expect(run.output).toMatch(new RegExp(`${signal}: deleting accept-\\S+ before exiting[\\s\\S]*accept-\\S+ deleted`));
      await expectNothingLeft(run);
    });
  }
});

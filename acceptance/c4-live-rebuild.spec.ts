/**
 * C4 — a brand-new blank machine, given only the bootstrap key, becomes cc-ci through the runbook
 * in docs/install.md: running, no failed unit, oneshots converged, secrets and cert decrypted.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { fileHashesOnHost } from '../helpers/common/host-scan.ts';
import { describeStep, parseRunbook, type RunbookStep } from '../helpers/runbook/index.ts';
import { isHarnessEntry, isHostGitCredentialsEntry } from '../helpers/runbook/run.ts';
import { describeUnit, failedUnits, journalExcerpt, systemState, waitForOneshots } from '../helpers/systemd/index.ts';
import { attach, dodItem, observation, skipBecause, system, test, expectNone, within, observes, runHost } from './support/dod.ts';
import { shellWord } from '../helpers/common/host.ts';
import { HarnessError } from '../helpers/common/errors.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** What switch-to-configuration's exit codes mean on NixOS. */
const SWITCH_EXIT_CODES: Record<number, string> = {
  2: ' (activation failed: nothing was switched)',
  4: ' (some units failed; the new generation is active all the same)',
};

dodItem('C4', () => {
  const { docs, host: paths } = system();
  // The base repo's runbook, parsed once for the two tests that compare with it.
  let parsed: Promise<RunbookStep[]> | undefined;
  const documentedSteps = (dir: string): Promise<RunbookStep[]> =>
    (parsed ??= readFile(join(dir, docs.install), 'utf8').then((text) => parseRunbook(text, docs.install)));

  test('the machine was created blank in this run, before any runbook step', async ({ run, task, skip }) => {
    observes(task, runHost());
    if (!run.instance.createdInThisRun || !run.runbook) skipBecause({ task, skip }, 'warm run: this host was not created by this run (a cold run proves this)');
    const first = run.runbook.steps[0];
    expect(first, 'no runbook step ran').toBeDefined();
    expect(
      Date.parse(run.instance.createdAt) <= Date.parse(first!.startedAt),
      `${run.instance.name} was created at ${run.instance.createdAt}, after the first runbook step at ${first!.startedAt}`,
    ).toBe(true);
    observation(task, `${run.instance.name} created ${run.instance.createdAt} from a blank image, in ${run.instance.project}`);
  });

  test(`the commands run on the machine are exactly the steps of ${docs.install}`, async ({ run, baseRepo, task, skip }) => {
    observes(task, runHost());
    if (run.ledger.length === 0) skipBecause({ task, skip }, 'no provisioning ledger: this host was not provisioned by the harness');
    const steps = await documentedSteps(baseRepo.dir);
    const expected = steps.map((step) => (step.kind === 'sh' ? `exec ${step.script}` : `push ${step.path} ${step.mode.toString(8).padStart(4, '0')}`));
    // The operator's git credentials for the runbook's clones are the harness's, pushed and removed around the steps.
    const credentialEntries = run.ledger.filter(isHostGitCredentialsEntry);
    const actual = run.ledger
      .filter((entry) => !isHarnessEntry(entry))
      .map((entry) => (entry.kind === 'exec' ? `exec ${entry.command}` : `push ${entry.path} ${entry.mode}`));
    await attach(`runbook (${docs.install})`, steps.map((step) => `${step.index}. ${describeStep(step)}`).join('\n'));
    await attach('provisioning ledger', run.ledger);
    const extra = actual.filter((action, index) => action !== expected[index]);
    const missing = expected.filter((action) => !actual.includes(action));
    expect(
      actual,
      `what the harness did to the machine differs from ${docs.install}: not in the runbook [${extra.join('; ')}], runbook steps not done [${missing.join('; ')}]`,
    ).toEqual(expected);
    observation(
      task,
      `${actual.length} actions on the machine, each a step of ${docs.install}, in order${credentialEntries.length ? ` (besides ${credentialEntries.length} ledger entries for the operator's git credentials, ACCEPT_HOST_GIT_CREDENTIALS_FILE)` : ''}`,
    );
  });

  test(`every step of ${docs.install} ran on the blank machine, each program it names there to run`, async ({ run, baseRepo, task, skip }) => {
    observes(task, runHost());
    if (!run.instance.createdInThisRun || !run.runbook) skipBecause({ task, skip }, 'warm run: this host was not created by this run (a cold run proves this)');
    const documented = await documentedSteps(baseRepo.dir);
    const stopped = run.runbook.steps.find((step) => step.exitCode !== 0);
    const at = (step: { index: number; line: number }) => `runbook step ${step.index} (${run.runbook!.source}:${step.line})`;
    // The channel dropped under a step and came back: the harness could not learn how the step ended.
    const lost = run.runbook.steps.find((step) => step.channel?.lostForMs !== undefined);
    if (lost) {
      throw new HarnessError(
        `${at(lost)}: the ${lost.channel.via} channel to ${run.instance.name} dropped during the step and answered again after ${Math.round(lost.channel.lostForMs! / 1000)} s, so how the step ended is unknown ` +
          "(a switch that restarts the VM's agent cuts the command it runs: enable virtualisation.incus.agent, whose agent a switch leaves running, or have the step run the switch detached, as systemd-run does)",
      );
    }
    if (stopped?.notStarted) {
      expect.fail(
        `${at(stopped)} could not start ${stopped.notStarted.map((program) => `\`${program}\``).join(', ')} on ${run.instance.name} (exit ${stopped.exitCode}): ${docs.install} relies on a program the blank machine does not have:\n${stopped.outputTail}`,
      );
    }
    // The rebuild's own exit (the document's last step) is judged below, with what switch-to-configuration's codes mean.
    if (stopped && stopped.index !== documented.at(-1)?.index)
      expect.fail(`${at(stopped)} exited ${stopped.exitCode}, so the steps after it never ran:\n${stopped.outputTail}`);
    expect(run.runbook.steps.length, `${run.runbook.steps.length} of the ${documented.length} steps of ${docs.install} ran`).toBe(documented.length);
    observation(task, `all ${documented.length} steps of ${docs.install} ran on ${run.instance.name}, each program found`);
  });

  test('the rebuild succeeded and the system is running with 0 failed units', async ({ run, host, task }) => {
    observes(task, runHost());
    const rebuild = run.runbook?.steps.at(-1);
    // With its channel lost, the rebuild's exit is unknown (the test above says so): the machine's state alone is judged here.
    const exitKnown = rebuild !== undefined && rebuild.channel?.lostForMs === undefined;
    if (rebuild && exitKnown) {
      const meaning = SWITCH_EXIT_CODES[rebuild.exitCode] ?? '';
      expect(rebuild.exitCode, `the last runbook step (\`${rebuild.text}\`) exited ${rebuild.exitCode}${meaning}:\n${rebuild.outputTail}`).toBe(0);
    }
    const failed = await failedUnits(host);
    const journals = await Promise.all(failed.map(async (unit) => `## ${unit}\n${await journalExcerpt(host, unit, 15)}`));
    if (failed.length) await attach('journal of failed units', journals.join('\n\n'));
    expectNone(failed, `failed units on ${host.name}`);
    const state = await systemState(host);
    expect(state, `systemctl is-system-running on ${host.name}`).toBe('running');
    observation(
      task,
      `is-system-running = running, 0 failed units${rebuild ? (exitKnown ? `, nixos-rebuild switch exit ${rebuild.exitCode} over ${rebuild.channel?.via ?? 'the run host channel'}` : ", the rebuild's exit unknown (its channel dropped)") : ''}`,
    );
  });

  test(
    'the reconcile oneshots have converged',
    async ({ run, host, task }) => {
      observes(task, runHost());
      const report = await waitForOneshots(host, paths.oneshots, { timeoutMs: run.durations.converge });
      await attach('oneshots', report.units.map(describeUnit).join('\n'));
      const broken = report.converged ? [] : report.broken.map((unit) => `${unit.unit}: ${unit.reason}\n${unit.journal ?? ''}`);
      expectNone(broken, 'oneshots that did not converge');
      observation(
        task,
        `${paths.oneshots.length} oneshots active (exited), result success: ${paths.oneshots.map((unit) => unit.replace(/\.service$/, '')).join(', ')}`,
      );
    },
    within('converge'),
  );

  test('every secret and the cert were decrypted on the machine', async ({ host, gitSecrets, task }) => {
    observes(task, runHost());
    const names = Object.keys(gitSecrets.values);
    // An absent secret is a FAIL; a sha256sum that fails is an ERROR, never a secret "not decrypted".
    const hashes = await fileHashesOnHost(
      host,
      names.map((name) => `${paths.secretsDir}/${name}`),
      'hash the decrypted secrets',
    );
    const wrong = names.filter((name) => hashes.get(`${paths.secretsDir}/${name}`) !== sha256(gitSecrets.values[name]!));
    expectNone(wrong, `secrets not decrypted (or not equal to git) on ${host.name}`);
    const cert = await host.exec(`test -s ${shellWord(paths.certChain)} && test -s ${shellWord(paths.certKey)}`);
    expect(cert.exitCode, `${paths.certChain} or ${paths.certKey} is missing or empty`).toBe(0);
    observation(task, `${names.length} secrets in ${paths.secretsDir} equal to git; cert and key in ${paths.certChain}, ${paths.certKey}`);
  });
});

/**
 * Changing the host, as the D specs that must (D5's enrolment, D6's rotation) do: its checkout,
 * committed and rebuilt as docs/install.md rebuilds it, then put back and rebuilt again.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { withinDuration } from '../../helpers/common/budget.ts';
import type { Config, Durations } from '../../helpers/common/config.ts';
import { HarnessError } from '../../helpers/common/errors.ts';
import type { HostChannel } from '../../helpers/common/host.ts';
import { redact } from '../../helpers/common/redact.ts';
import { parseRunbook } from '../../helpers/runbook/index.ts';
import type { RunContext } from './context.ts';

export function mayChangeHost(run: RunContext, config: Config): boolean {
  return run.instance.createdInThisRun || config.ci.allowHostChanges;
}

export const HOST_CHANGES_SKIP =
  'this changes the host (commit to its checkout, rebuild, restore): done in cold runs on the throwaway, or with ACCEPT_ALLOW_HOST_CHANGES=1';

export interface HostCheckout {
  /** Where docs/install.md clones the base repo on the host. */
  dir: string;
  /** The rebuild step of docs/install.md, as written there. */
  rebuild: string;
  /** How long a rebuild may take (ACCEPT_REBUILD_TIMEOUT). */
  durations: Pick<Durations, 'rebuild'>;
}

/**
 * The host's checkout and its rebuild step: from the runbook that built the host, as the run
 * context carries it (a cold run's, or the kept host's); parsed from the base repo's install doc
 * only for a host no run provisioned (the ssh target).
 */
export async function hostCheckout(run: Pick<RunContext, 'runbook' | 'durations' | 'profile'>, baseDir: string): Promise<HostCheckout> {
  const source = run.profile.docs.install;
  const scripts = run.runbook
    ? run.runbook.steps.filter((step) => step.kind === 'sh').map((step) => step.text)
    : parseRunbook(await readFile(join(baseDir, source), 'utf8'), source).flatMap((step) => (step.kind === 'sh' ? [step.script] : []));
  const rebuild = scripts.find((script) => /nixos-rebuild switch/.test(script));
  if (!rebuild)
    throw new HarnessError(
      `${run.runbook ? `the runbook that built the host (${run.runbook.source})` : source} has no \`nixos-rebuild switch\` step to rebuild with`,
    );
  const dir = /--flake\s+['"]?([^'"?#\s]+)/.exec(rebuild)?.[1];
  if (!dir?.startsWith('/')) throw new HarnessError(`cannot tell the host's checkout from the rebuild step \`${rebuild}\``);
  return { dir, rebuild, durations: run.durations };
}

const GIT = 'git -c user.name=cc-ci-acceptance -c user.email=acceptance@cc-ci.invalid';

export async function rebuildHost(host: HostChannel, checkout: HostCheckout, why: string): Promise<void> {
  const result = await withinDuration(checkout.durations, 'rebuild', `the rebuild ${why} on ${host.name}`, (timeoutMs) =>
    host.exec(checkout.rebuild, { timeoutMs, purpose: why }),
  );
  expect(
    result.exitCode,
    redact(`the rebuild ${why} exited ${result.exitCode}:\n${(result.stdout + result.stderr).trim().split('\n').slice(-8).join('\n')}`),
  ).toBe(0);
}

/**
 * Makes `change` to the host's checkout, commits it (unless told not to), rebuilds, runs `body`,
 * and whatever happens puts both repos back and rebuilds again.
 */
export async function withHostChange<T>(
  host: HostChannel,
  checkout: HostCheckout,
  what: string,
  change: () => Promise<unknown>,
  body: () => Promise<T>,
  options: { commit?: boolean } = {},
): Promise<T> {
  const { dir } = checkout;
  // No secrets checkout is "no second head"; a git that fails on one is an error, not that.
  const heads = await host.succeed(`cd ${dir} && git rev-parse HEAD && if [ -e secrets/.git ]; then git -C secrets rev-parse HEAD; fi`, { strict: true });
  const [base, secrets] = heads.stdout.trim().split('\n');
  // The restore resets hard: never on a checkout holding someone's uncommitted work.
  const dirty = (await host.succeed(`cd ${dir} && git status --porcelain --ignore-submodules=none`)).stdout.trim();
  if (dirty) throw new HarnessError(`${dir} on ${host.name} has uncommitted changes, so it is left alone: ${dirty.split('\n').slice(0, 3).join('; ')}`);
  try {
    await change();
    if (options.commit !== false)
      await host.succeed(`cd ${dir} && ${GIT} add -A && ${GIT} commit -q -m ${JSON.stringify(`acceptance: ${what}`)}`, { purpose: what });
    await rebuildHost(host, checkout, `after ${what}`);
    return await body();
  } finally {
    const restore = [`cd ${dir}`, `git reset -q --hard ${base}`, 'git clean -fdq'];
    if (secrets) restore.push(`git -C secrets reset -q --hard ${secrets}`);
    const result = await host.exec(restore.join(' && '));
    if (result.exitCode !== 0) {
      // biome-ignore lint/correctness/noUnsafeFinally: a host left changed must fail the run, even over the body's own error
      throw new HarnessError(`could not restore ${dir} on ${host.name} after ${what}: ${result.stderr.trim()}`);
    }
    const rebuilt = await withinDuration(checkout.durations, 'rebuild', `the rebuild restoring ${host.name} after ${what}`, (timeoutMs) =>
      host.exec(checkout.rebuild, { timeoutMs }),
    );
    if (rebuilt.exitCode !== 0) {
      // biome-ignore lint/correctness/noUnsafeFinally: as above: a host not rebuilt back must fail the run
      throw new HarnessError(
        redact(`the rebuild restoring ${host.name} after ${what} exited ${rebuilt.exitCode}: ${rebuilt.stderr.trim().split('\n').slice(-5).join(' | ')}`),
      );
    }
  }
}

export const GIT_COMMIT = GIT;

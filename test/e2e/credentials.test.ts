/**
 * Issue 14, item 4: a git token given in every way a user might (a repo URL's userinfo, the
 * operator credentials file, the host credentials file) reaches no file of the run, no line of
 * its output, and does not stay on the host. The lab's dumb-HTTP git server ignores auth, so the
 * clones work whatever is sent; what is checked is where the token went.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { latestRunRecord } from '../../reporting/run-record-io.ts';
import { loadConfig } from '../../helpers/common/config.ts';
import { exec } from '../../helpers/common/exec.ts';
import { HOST_PATH, hostShellArgv } from '../../helpers/common/host.ts';
import { credentialForms, filesHolding } from '../../helpers/common/testing/leak-scan.ts';
import { HOST_GIT_CONFIG, HOST_GIT_CREDENTIALS_PURPOSE } from '../../helpers/runbook/run.ts';
import { readKept } from '../../machines/kept.ts';
import { labSettings } from '../../lab/index.ts';
import { leaseLabWorker, readText, runAccept, type ChildRun } from './support.ts';
import type { WorkerLease } from '../../lab/workers.ts';

const USER = 'ci-bot';
const TOKEN = 'e2e-Git-Token_5a1d7c93';
const FORMS = credentialForms(USER, TOKEN);
const lab = labSettings(loadConfig().lab.dir);

function withToken(url: string): string {
  return url.replace('http://', `http://${USER}:${TOKEN}@`);
}

describe('git credentials given in every supported way', () => {
  let secretsDir: string;
  let stateDir: string;
  let run: ChildRun;
  let host: string;
  let lease: WorkerLease | undefined;

  beforeAll(async () => {
    lease = await leaseLabWorker();
    secretsDir = await mkdtemp(join(tmpdir(), 'accept-e2e-git-creds-'));
    stateDir = await mkdtemp(join(tmpdir(), 'accept-e2e-state-'));
    const origin = new URL(lab.baseRepo).origin;
    await writeFile(join(secretsDir, 'operator'), `${withToken(origin)}\n`, { mode: 0o600 });
    // The throwaway clones from the same loopback origin (the lab forwards it into the instance).
    await writeFile(join(secretsDir, 'host'), `${withToken(origin)}\n`, { mode: 0o600 });
    run = await runAccept(['run'], {
      env: {
        ACCEPT_RAM_GUIDELINE: '1TiB',
        ACCEPT_KEEP: 'always',
        ACCEPT_TTL: '30m',
        ACCEPT_STATE_DIR: stateDir,
        ACCEPT_INCUS_PROJECT: lease.project,
        ACCEPT_BASE_REPO: withToken(lab.baseRepo),
        ACCEPT_INSTANCE_REPO: withToken(lab.instanceRepo),
        ACCEPT_GIT_CREDENTIALS_FILE: join(secretsDir, 'operator'),
        ACCEPT_HOST_GIT_CREDENTIALS_FILE: join(secretsDir, 'host'),
      },
      timeoutMs: 1_800_000,
    });
    host = (await readKept(stateDir))?.host.name ?? '';
  }, 1_900_000);

  afterAll(async () => {
    if (stateDir) await runAccept(['down'], { env: { ACCEPT_STATE_DIR: stateDir } });
    await Promise.all([secretsDir, stateDir].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })));
    await lease?.release();
  }, 300_000);

  test('the run passes, C3 and C4 included: the credential push is accounted for', async () => {
    expect(run.exitCode, run.output).toBe(0);
    expect(run.stdout).toMatch(/\| C3 [^|]*\| PASS \|/);
    expect(run.stdout).toMatch(/\| C4 [^|]*\| PASS \|/);
  });

  test('no file under the reports or state directory, and no line of output, holds the token in any form', async () => {
    expect(await filesHolding([run.reportsDir, stateDir], FORMS)).toEqual([]);
    for (const form of FORMS)
      expect(run.output.includes(form), `the run's output holds a form of the token (${form === TOKEN ? 'raw' : 'encoded'})`).toBe(false);
  });

  test('the evidence still names the repos, without credentials, and the ledger shows the host credentials pushed and removed', async () => {
    const record = await latestRunRecord(run.reportsDir);
    expect(record.baseRepo).toBe(lab.baseRepo);
    expect(record.instanceRepo).toBe(lab.instanceRepo);
    expect(record.commits?.base, record.commits?.how).toMatch(/^[0-9a-f]{40}$/);
    const ledger = JSON.parse(await readText(join(run.reportsDir, 'evidence', record.runId, 'ledger.json'))) as {
      kind: string;
      path?: string;
      purpose: string;
      secret?: boolean;
      exitCode?: number;
    }[];
    const marked = ledger.filter((entry) => entry.purpose === HOST_GIT_CREDENTIALS_PURPOSE);
    expect(marked.map((entry) => entry.kind)).toEqual(['push', 'exec']);
    expect(marked[0]).toMatchObject({ path: HOST_GIT_CONFIG, secret: true });
    expect(marked[1]!.exitCode).toBe(0);
  });

  test('the kept host holds neither the git config nor the token anywhere the runbook could have written it', async () => {
    expect(host, 'no kept host recorded').not.toBe('');
    // The patterns go in on stdin, so the token is in no argv here either.
    const found = await onHost(
      lease!.project,
      host,
      `test ! -e ${HOST_GIT_CONFIG} || echo "${HOST_GIT_CONFIG} is still there"; grep -rlsF -f - /root /etc /var/lib /run/secrets.d; echo "grep exit $?"`,
      `${FORMS.join('\n')}\n`,
    );
    const lines = found.stdout.trim().split('\n');
    // grep: 1 = nothing found, 2 = some file unreadable (and nothing found in the rest); 127 would be no grep at all.
    expect(lines.at(-1), found.stderr).toMatch(/^grep exit [12]$/);
    expect(lines.slice(0, -1), `on ${host}: the git config left behind, or files that hold the token`).toEqual([]);
  });
});

/** A shell line on the kept host with the harness's PATH (a VM's exec PATH has only sh and env). */
async function onHost(project: string, host: string, script: string, input: string) {
  return exec('incus', ['--project', project, 'exec', host, '--env', `PATH=${HOST_PATH}`, '--', ...hostShellArgv(script)], { input, timeoutMs: 300_000 });
}

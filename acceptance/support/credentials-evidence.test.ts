/**
 * Every writer of evidence, given a run whose repo URLs carry a token in their userinfo, a
 * ledger that pushed the host's git credentials, and an operator credentials file: no file it
 * writes holds the token in any form, and the repos are still named (without it).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayUrl } from '../../helpers/common/credentials.ts';
import { realTargetDurations } from '../../helpers/common/config.ts';

import { Ledger } from '../../helpers/common/ledger.ts';
import { credentialForms, filesHolding } from '../../helpers/common/testing/leak-scan.ts';
import { forgetSecrets } from '../../helpers/common/redact.ts';
import { startAuthGitServer, type AuthGitServer } from '../../helpers/git/testing/auth-server.ts';
import { HOST_GIT_CONFIG, HOST_GIT_CREDENTIALS_PURPOSE } from '../../helpers/runbook/run.ts';
import { runContext } from '../../machines/run-context.ts';
import type { D8Record } from './d8.ts';
import { writeD8 } from './d8.ts';
import { recordRunStart, syncRunEvidence } from './evidence-dir.ts';
import { exampleProfile } from '../../machines/system-profile.fixture.ts';

const USER = 'ci-bot';
const TOKEN = 'forge-Token_c0ffee42';
const FORMS = credentialForms(USER, TOKEN);

let server: AuthGitServer;
let reportsDir: string;
let withToken: string;
const saved = { ...process.env };
let credentialsFile: string;

beforeAll(async () => {
  server = await startAuthGitServer({ username: USER, password: TOKEN });
  reportsDir = await mkdtemp(join(tmpdir(), 'accept-creds-evidence-'));
  withToken = server.repoUrl.replace('http://', `http://${USER}:${TOKEN}@`);
  // The operator credentials file holds the same token; beside the reports dir, so the scan of that dir does not see it.
  credentialsFile = join(reportsDir, '..', `${reportsDir.split('/').pop()}-credentials`);
  const file = credentialsFile;
  await writeFile(file, `${server.url.replace('http://', `http://${USER}:${TOKEN}@`)}\n`, { mode: 0o600 });
  process.env = { ...saved, ACCEPT_GIT_CREDENTIALS_FILE: file, ACCEPT_BASE_REPO: withToken, ACCEPT_INSTANCE_REPO: withToken };
});

afterAll(async () => {
  process.env = { ...saved };
  forgetSecrets();
  await server.close();
  await rm(reportsDir, { recursive: true, force: true });
  await rm(credentialsFile, { force: true });
});

describe('evidence writers, given repo URLs with a token in them', () => {
  it('write no form of the token to any file, and name the repos without it', async () => {
    const ledger = new Ledger();
    ledger.recordPush(
      HOST_GIT_CONFIG,
      Buffer.from(`[http "${server.url}/"]\n\textraHeader = Authorization: Basic ${FORMS.at(-1)}\n`),
      0o600,
      HOST_GIT_CREDENTIALS_PURPOSE,
      true,
    );
    ledger.recordExec(`git clone ${withToken} /root/cc-ci`, 0, 5, 'runbook step 1', `Cloning into '/root/cc-ci'... ${withToken}`);
    // A context that bypassed loadConfig: the writers must strip the URLs themselves.
    const context = runContext({
      runId: 'creds-1',
      mode: 'cold',
      access: {
        kind: 'lab',
        socks: 'socks5://127.0.0.1:1055',
        incus: {
          url: 'https://127.0.0.1:8443',
          clientCertFile: 'c',
          clientKeyFile: 'k',
          project: 'terraform-ci',
          image: 'i',
          instanceType: 'container',
          memory: '4GiB',
          profiles: ['default'],
          instanceConfig: {},
          address: { family: 'inet' },
        },
      },
      faced: { kind: 'lab', server: 'https://127.0.0.1:8443', instanceType: 'container', standIns: [], notes: [] },
      system: {
        domain: 'ci.lab.test',
        tlsCaFile: 'ca.pem',
        ageKeyFile: 'age.txt',
        baseRepo: withToken,
        instanceRepo: withToken,
        durations: realTargetDurations({ durations: {} }),
        forgeWrites: { kind: 'stand-in' },
        profile: exampleProfile(),
        machines: { production: { unreachable: 'not in this test' }, neighbours: [] },
        rebootCheck: false,
      },
      host: {
        name: 'accept-creds-1',
        project: 'terraform-ci',
        createdAt: '2026-12-01T22:00:00.000Z',
        expiresAt: '2026-12-02T00:00:00.000Z',
        https: { host: '127.0.0.1', port: 443 },
        ledger: ledger.entries,
      },
    });
    await recordRunStart(reportsDir, context);
    const d8: D8Record = {
      runId: 'creds-1',
      static: {
        builtAt: '2026-12-01T22:01:00.000Z',
        baseRepo: withToken,
        commit: 'a'.repeat(40),
        composition: 'submodule',
        toplevel: '/nix/store/x-toplevel',
        closureHash: 'sha256:x',
        paths: 1,
      },
      running: { observedAt: '2026-12-01T22:02:00.000Z', host: 'accept-creds-1', toplevel: '/nix/store/x-toplevel', closureHash: 'sha256:x', paths: 1 },
      identical: true,
    };
    await writeD8(reportsDir, d8);
    await syncRunEvidence(reportsDir, { context, ledger: ledger.entries });

    expect(await filesHolding([reportsDir], FORMS)).toEqual([]);
    // Not vacuous: the files name the repos, and the clone that resolved the commits authenticated.
    const record = JSON.parse(await readFile(join(reportsDir, 'evidence', 'creds-1', 'run.json'), 'utf8')) as { baseRepo: string; commits: { base?: string } };
    expect(record.baseRepo).toBe(server.repoUrl);
    expect(record.commits.base).toMatch(/^[0-9a-f]{40}$/);
    expect(await readFile(join(reportsDir, 'allure-results', 'environment.properties'), 'utf8')).toContain(`base.repo=${server.repoUrl}`);
    expect(await readFile(join(reportsDir, 'evidence', 'd8.md'), 'utf8')).toContain(`fresh clone of ${server.repoUrl}`);
  });

  it('the scan finds the token where a writer leaks it', async () => {
    await writeFile(join(reportsDir, 'leaky.txt'), `clone of ${withToken}`);
    await writeFile(join(reportsDir, 'leaky-header.txt'), `Authorization: Basic ${FORMS.at(-1)}`);
    expect(await filesHolding([reportsDir], FORMS)).toHaveLength(2);
    expect(displayUrl(withToken)).toBe(server.repoUrl);
  });
});

/**
 * Deliberate breakage of a lab instance, for proving that specs can fail. Only the lab target
 * applies these; nothing is recorded in the provisioning ledger, since they are not the runbook.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { createCa, issueWildcard, type LabCa } from '../../lab/pki.ts';
import { labPaths } from '../../lab/state.ts';
import type { HostChannel } from './host.ts';

export const LAB_SABOTAGES = {
  'served-cert-other-leaf': 'nginx serves another wildcard cert from the same lab CA',
  'served-cert-other-ca': 'nginx serves a cert with the same subject and SANs from another CA',
} as const;

export type LabSabotage = keyof typeof LAB_SABOTAGES;

export function parseSabotage(value: string | undefined): LabSabotage | undefined {
  if (value === undefined) return undefined;
  if (!(value in LAB_SABOTAGES)) {
    throw new ConfigError('ACCEPT_LAB_SABOTAGE', `unknown sabotage ${JSON.stringify(value)}; known: ${Object.keys(LAB_SABOTAGES).join(', ')}`);
  }
  return value as LabSabotage;
}

async function serveOtherCert(host: HostChannel, labDir: string, domain: string, otherCa: boolean): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-sabotage-'));
  try {
    const paths = labPaths(labDir);
    const ca: LabCa = otherCa
      ? await createCa(join(dir, 'ca'), 'Impostor')
      : { root: { cert: paths.rootCa, key: join(paths.caDir, 'root.key') }, intermediate: { cert: join(paths.caDir, 'intermediate.pem'), key: join(paths.caDir, 'intermediate.key') } };
    const cert = await issueWildcard(ca, dir, 'decoy', domain);
    await host.pushFile('/etc/ccci-sabotage/fullchain.pem', Buffer.from(cert.fullchainPem), { mode: 0o444, purpose: 'sabotage', secret: false });
    await host.pushFile('/etc/ccci-sabotage/privkey.pem', Buffer.from(cert.keyPem), { mode: 0o400, purpose: 'sabotage', secret: true });
    await host.succeed(
      'ln -sfn /etc/ccci-sabotage/fullchain.pem /var/lib/ci-certs/live/fullchain.pem && ln -sfn /etc/ccci-sabotage/privkey.pem /var/lib/ci-certs/live/privkey.pem && systemctl reload nginx',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function applyLabSabotage(sabotage: LabSabotage, host: HostChannel, labDir: string, domain: string): Promise<void> {
  log.warn(`lab sabotage ${sabotage}: ${LAB_SABOTAGES[sabotage]}`);
  switch (sabotage) {
    case 'served-cert-other-leaf':
      return serveOtherCert(host, labDir, domain, false);
    case 'served-cert-other-ca':
      return serveOtherCert(host, labDir, domain, true);
  }
}

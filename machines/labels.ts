/** The labels that make an instance this harness's own; nothing without them is ever touched. */
import type { IncusInstance } from '../helpers/incus/client.ts';

export const NAME_PREFIX = 'accept-';
export const LABEL_OWNER = 'user.accept.owner';
export const LABEL_RUN_ID = 'user.accept.run-id';
export const LABEL_EXPIRES = 'user.accept.expires';
export const OWNER = 'cc-ci-acceptance';

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase();
  return `${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

export function instanceName(runId: string): string {
  return `${NAME_PREFIX}${runId}`;
}

export function labelsFor(runId: string, expires: Date): Record<string, string> {
  return { [LABEL_OWNER]: OWNER, [LABEL_RUN_ID]: runId, [LABEL_EXPIRES]: expires.toISOString() };
}

export function isOurs(instance: Pick<IncusInstance, 'name' | 'config'>, runId?: string): boolean {
  if (!instance.name.startsWith(NAME_PREFIX) || instance.config[LABEL_OWNER] !== OWNER) return false;
  return runId === undefined || instance.config[LABEL_RUN_ID] === runId;
}

export function isExpired(instance: Pick<IncusInstance, 'config'>, now = new Date()): boolean {
  const expires = Date.parse(instance.config[LABEL_EXPIRES] ?? '');
  return Number.isFinite(expires) && expires <= now.getTime();
}

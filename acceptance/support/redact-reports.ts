/**
 * Setup file, after allure-vitest's: everything a spec worker sends out about a test (Allure
 * steps, including the ones allure-vitest makes from every expect() call, attachments, and the
 * failure itself) is redacted here, in the worker, where the decrypted secrets are known.
 */
import { afterEach, beforeEach } from 'vitest';
import { redact } from '../../helpers/common/redact.ts';

function redactDeep(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redact(value);
  if (!value || typeof value !== 'object' || seen.has(value)) return value;
  seen.add(value);
  const record = value as Record<string, unknown>;
  if (record.encoding === 'base64' && typeof record.content === 'string') {
    record.content = Buffer.from(redact(Buffer.from(record.content, 'base64').toString('utf8'))).toString('base64');
  }
  for (const key of Object.keys(record)) {
    if (key === 'content' && record.encoding === 'base64') continue;
    record[key] = redactDeep(record[key], seen);
  }
  return value;
}

beforeEach(({ onTestFailed }) => {
  onTestFailed(({ task }) => {
    for (const error of task.result?.errors ?? []) redactDeep(error);
  });
});

afterEach(({ task }) => {
  redactDeep(task.meta);
  for (const error of task.result?.errors ?? []) redactDeep(error);
});

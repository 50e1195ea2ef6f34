import { describe, expect, it } from 'vitest';
import { giteaPushEvent } from './webhooks.ts';

describe('giteaPushEvent', () => {
  it("is a push as Gitea sends one: the event name, a delivery id, and the payload's repository, ref, commits and pusher", () => {
    const { event, delivery, body } = giteaPushEvent('coop-cloud', 'custom-html', 'alice', 'https://git.ci.lab.test');
    expect(event).toBe('push');
    expect(delivery).toMatch(/^[0-9a-f-]{36}$/);
    const payload = JSON.parse(body);
    expect(payload).toMatchObject({
      ref: 'refs/heads/main',
      total_commits: 1,
      repository: { full_name: 'coop-cloud/custom-html', owner: { login: 'coop-cloud' } },
      pusher: { login: 'alice' },
      sender: { login: 'alice' },
    });
    expect(payload.before).toMatch(/^[0-9a-f]{40}$/);
    expect(payload.after).toBe(payload.commits[0].id);
    // Never Gitea's missing ping, nor a comment a bridge could take for !testme.
    expect(body).not.toMatch(/zen|hook_id|!testme/);
  });
});

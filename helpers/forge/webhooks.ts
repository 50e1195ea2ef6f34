/**
 * Webhook events as Gitea sends them: `X-Gitea-Event` names the event, `X-Gitea-Delivery` is a
 * fresh UUID, and `X-Gitea-Signature` is the hex HMAC-SHA256 of the raw body with the hook's
 * secret (the caller signs). Gitea has no `ping` event (that one is GitHub's), so a signature
 * check uses an event Gitea really sends: a push, which starts no `!testme` build.
 */
import { randomUUID } from 'node:crypto';

export interface GiteaEvent {
  event: 'push';
  delivery: string;
  body: string;
}

/** A push of one commit to `main` of owner/repo, by `pusher`: the fields Gitea's push payload carries. */
export function giteaPushEvent(owner: string, repo: string, pusher: string, forgeUrl: string): GiteaEvent {
  const user = { id: 0, login: pusher, username: pusher };
  const sha = () => randomUUID().replace(/-/g, '').padEnd(40, '0').slice(0, 40);
  const before = sha();
  const after = sha();
  const body = {
    ref: 'refs/heads/main',
    before,
    after,
    compare_url: `${forgeUrl}/${owner}/${repo}/compare/${before}...${after}`,
    commits: [
      {
        id: after,
        message: 'acceptance: a webhook signature check, not a change\n',
        url: `${forgeUrl}/${owner}/${repo}/commit/${after}`,
        author: { name: pusher, email: `${pusher}@acceptance.invalid`, username: pusher },
      },
    ],
    total_commits: 1,
    repository: {
      id: 0,
      name: repo,
      full_name: `${owner}/${repo}`,
      owner: { id: 0, login: owner, username: owner },
      private: false,
      html_url: `${forgeUrl}/${owner}/${repo}`,
    },
    pusher: user,
    sender: user,
  };
  return { event: 'push', delivery: randomUUID(), body: JSON.stringify(body) };
}

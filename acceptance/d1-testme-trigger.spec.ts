/**
 * D1 — a `!testme` comment from an org member on an enrolled recipe's PR starts a build within
 * 60 s; one from a non-member starts none; /hook takes only validly signed webhooks.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { signBody } from '../helpers/dashboard/index.ts';
import { giteaPushEvent } from '../helpers/forge/webhooks.ts';
import {
  buildFor,
  commentTestme,
  D1_START_LIMIT_MS,
  describeParams,
  isBuildOf,
  openPull,
  searchBuilds,
  testmeRefusal,
  type Ci,
  type Trigger,
} from './support/ci.ts';
import { attach, dodItem, observation, skipBecause, step, test, within, observes, ciFaces } from './support/dod.ts';

dodItem('D1', () => {
  // The comment flow's wait: ACCEPT_BUILD_START_TIMEOUT, or D1's own 60 s when that is longer.
  const flowBudget = () => Math.max(within('buildStart'), within() + D1_START_LIMIT_MS);

  // The outsider comments first, then the member, on the same PR: any poll that sees the
  // member's comment has seen the outsider's too, so no fixed wait is needed for "none".
  let flow: Promise<{ outsider: Trigger; member: Trigger; started: Awaited<ReturnType<typeof buildFor>> }> | undefined;
  const comments = (ci: Ci) =>
    (flow ??= (async () => {
      const recipe = ci.probeRecipe;
      const pull = await openPull(ci, recipe);
      const outsider = await step(`comment !testme on ${ci.org}/${recipe}#${pull.number} as a user outside the org`, () =>
        commentTestme(ci, recipe, ci.outsider, pull),
      );
      const member = await step(`comment !testme on ${ci.org}/${recipe}#${pull.number} as a member`, () => commentTestme(ci, recipe, ci.forge, pull));
      // The DoD's 60 s is asserted below; the wait may be longer (ACCEPT_BUILD_START_TIMEOUT), so that a late build reads as late, not as missing.
      const waitMs = Math.max(ci.durations.buildStart, D1_START_LIMIT_MS);
      const started = await step(`wait up to ${Math.round(waitMs / 1000)} s for the build of the member comment`, () => buildFor(ci, member, waitMs));
      return { outsider, member, started };
    })());

  // Both comment checks write to the forge: only where the run may (the lab's stand-in, or the probe repo).
  const mayComment = (ci: Ci, context: Parameters<typeof skipBecause>[0]) => {
    const refused = testmeRefusal(ci, ci.probeRecipe);
    if (refused) skipBecause(context, refused);
  };

  test(
    'a !testme comment from an org member starts a build within 60 s',
    async ({ ci, task, skip }) => {
      observes(task, ciFaces());
      mayComment(ci, { task, skip });
      const { member, started } = await comments(ci);
      expect(await ci.forge.isMember(ci.org, member.by), `${member.by} should be a member of ${ci.org} for this check`).toBe(true);
      expect(
        started,
        `no Drone build started within ${Math.round(Math.max(ci.durations.buildStart, D1_START_LIMIT_MS) / 1000)} s of !testme comment ${member.comment.id} by member ${member.by} on ${ci.org}/${member.recipe}#${member.pull.number}`,
      ).toBeDefined();
      const { build, seenAfterMs } = started!;
      await attach('build', build);
      expect(seenAfterMs, `build #${build.number} appeared ${seenAfterMs} ms after the comment`).toBeLessThanOrEqual(D1_START_LIMIT_MS);
      observation(
        task,
        `member ${member.by}'s !testme on ${member.recipe}#${member.pull.number} → Drone build #${build.number} within ${(seenAfterMs / 1000).toFixed(1)} s (params ${describeParams(ci, build, ['recipe', 'comment'])})`,
      );
    },
    flowBudget(),
  );

  test(
    'a !testme comment from a non-member starts no build',
    async ({ ci, task, skip }) => {
      observes(task, ciFaces());
      mayComment(ci, { task, skip });
      const { outsider, member, started } = await comments(ci);
      expect(await ci.forge.isMember(ci.org, outsider.by), `${outsider.by} must not be a member of ${ci.org} for this check`).toBe(false);
      expect(started, 'the member comment posted after it started no build either, so the bridge never looked').toBeDefined();
      const builds = await searchBuilds(ci, { notBefore: Math.floor(outsider.postedAt / 1000) });
      const rogue = builds.filter((build) => isBuildOf(ci, build, outsider));
      expect(
        rogue.map((build) => build.number),
        `a !testme from non-member ${outsider.by} (comment ${outsider.comment.id}) started Drone build(s) #${rogue.map((build) => build.number).join(', #')}`,
      ).toEqual([]);
      observation(
        task,
        `non-member ${outsider.by}'s !testme (comment ${outsider.comment.id}) started no build, while member ${member.by}'s later one started #${started!.build.number}`,
      );
    },
    flowBudget(),
  );

  test('/hook accepts a validly signed webhook and rejects unsigned and forged ones', async ({ ci, gitSecrets, task }) => {
    observes(task, ciFaces());
    const key = gitSecrets.values.webhook_hmac;
    expect(key, 'the instance repo has no sops value webhook_hmac').toBeDefined();
    // A push, as Gitea sends it (it has no ping): no build is started by it, the signature is what is checked.
    const { event, body } = giteaPushEvent(ci.org, ci.probeRecipe, 'cc-ci-acceptance', ci.forge.baseUrl);
    const signed = await ci.apex.hook(body, signBody(body, key!), event);
    const unsigned = await ci.apex.hook(body, undefined, event);
    const forged = await ci.apex.hook(body, signBody(body, randomBytes(32).toString('hex')), event);
    await attach('answers', { signed: [signed.status, signed.text], unsigned: [unsigned.status, unsigned.text], forged: [forged.status, forged.text] });
    expect(signed.status >= 200 && signed.status < 300, `a webhook signed with webhook_hmac got HTTP ${signed.status}: ${signed.text.slice(0, 200)}`).toBe(
      true,
    );
    expect([401, 403], `an unsigned /hook was accepted (HTTP ${unsigned.status})`).toContain(unsigned.status);
    expect([401, 403], `a /hook signed with another key was accepted (HTTP ${forged.status})`).toContain(forged.status);
    observation(
      task,
      `POST /hook (a Gitea ${event} event): signed with webhook_hmac → ${signed.status}, unsigned → ${unsigned.status}, forged → ${forged.status}`,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { outcomeOfStatus, outcomeProblem, outcomesIn, runListEntry, visibleText } from './outcome.ts';

const INDEX = [
  '<ul><li>custom-html <img src="/badge/custom-html.svg" alt="custom-html status"></li></ul>',
  '<table><tr><th>run</th><th>recipe</th><th>status</th></tr>',
  '<tr><td><a href="/runs/2/">#2</a></td><td>custom-html</td><td>failure</td></tr>',
  '<tr><td><a href="/runs/1/">#1</a></td><td>custom-html</td><td>success</td></tr></table>',
].join('');

describe('outcomeOfStatus', () => {
  it("maps Drone's finished statuses, and nothing else", () => {
    expect(outcomeOfStatus('success')).toBe('passing');
    for (const status of ['failure', 'error', 'killed']) expect(outcomeOfStatus(status)).toBe('failing');
    expect(outcomeOfStatus('running')).toBeUndefined();
  });
});

describe('outcomesIn', () => {
  it('reads both directions, by whole words, in visible text only', () => {
    expect([...outcomesIn('cc-ci build #5 of custom-html failed (failure)')]).toEqual(['failing']);
    expect([...outcomesIn('cc-ci build #5 of custom-html passed (failure)')].sort()).toEqual(['failing', 'passing']);
    expect([...outcomesIn('<svg><title>n8n: passing</title><text>passing</text></svg>')]).toEqual(['passing']);
    // "required", "rendered", a link's path and a tag's attribute say nothing.
    expect([...outcomesIn('<p class="failing">required, rendered: https://ci.test/red/1/</p>')]).toEqual([]);
  });
});

describe('outcomeProblem', () => {
  it('wants the outcome said, and the other one not said', () => {
    expect(outcomeProblem('build #3 failed (failure)', 'failing')).toBeUndefined();
    expect(outcomeProblem('build #3 passed (failure)', 'failing')).toBe('it says passing as well as failing');
    expect(outcomeProblem('custom-html: passing', 'failing')).toBe('it says passing');
    expect(outcomeProblem('custom-html: unknown', 'passing')).toBe('it says neither passing nor failing');
  });
});

describe('runListEntry', () => {
  it("takes the innermost row that links the run, not its neighbours'", () => {
    expect(runListEntry(INDEX, '/runs/2/')).toBe('#2 custom-html failure');
    expect(runListEntry(INDEX, '/runs/1/')).toBe('#1 custom-html success');
    expect(runListEntry(INDEX, '/runs/3/')).toBeUndefined();
  });

  it('falls back to list items, then to the line that holds the link', () => {
    expect(runListEntry('<ul><li><a href="/runs/7/">#7</a> passed</li><li><a href="/runs/6/">#6</a> failed</li></ul>', '/runs/6/')).toBe('#6 failed');
    expect(runListEntry('<p>runs</p>\n<a href="/runs/9/">#9</a> failed\n<a href="/runs/8/">#8</a> passed\n', '/runs/9/')).toBe('#9 failed');
  });
});

describe('visibleText', () => {
  it('drops tags and scripts, decodes entities and leaves links out', () => {
    expect(visibleText('<script>var failed = 1</script><b>a &amp; b</b> see https://x.test/fail')).toBe('a & b see');
  });
});

import { describe, expect, it } from 'vitest';
import { withCleanup } from '../reporting/run-record.ts';
import { sampleRecord } from '../reporting/run-record.fixture.ts';
import { allureConfig, historyWithout, htmlText, missingFrom, pickTestCase, recordItems, reportName, staticFile } from './report.ts';

describe('report helpers', () => {
  it('drops the lines of this run from the history, so a run reported twice counts once', () => {
    const line = (runId: string) => JSON.stringify({ uuid: `u-${runId}`, name: reportName(runId), testResults: {} });
    const jsonl = `${line('r1')}\n${line('r2')}\nnot json\n\n`;
    expect(historyWithout(jsonl, reportName('r2'))).toEqual({ text: `${line('r1')}\n`, runs: 1, replaced: true, unreadable: 1 });
    expect(historyWithout(jsonl, reportName('r3'))).toEqual({ text: `${line('r1')}\n${line('r2')}\n`, runs: 2, replaced: false, unreadable: 1 });
    expect(historyWithout('', reportName('r1'))).toEqual({ text: '', runs: 0, replaced: false, unreadable: 0 });
  });

  it('asks Allure 3 for Allure 2\'s page alone, named after the run, with its own history', () => {
    expect(allureConfig('r7', '/h/history.jsonl')).toEqual({
      name: 'cc-ci Definition of Done, run r7',
      historyPath: '/h/history.jsonl',
      historyLimit: 20,
      plugins: { allure2: { options: { reportName: 'cc-ci Definition of Done, run r7' } } },
    });
  });

  it('takes the items of the run record, not its cleanup check', () => {
    const record = withCleanup(sampleRecord(), { verdict: 'PASS', evidence: 'gone', at: 'x' });
    expect(recordItems(record)).toEqual(['C1 repo split', 'C2 cert in git', 'C4 live rebuild', 'D8 reproducible server']);
  });

  it('finds names in the visible text of a rendered page', () => {
    const text = htmlText('<div class="node__title"><span>C2 cert in git</span></div><script>"C1 repo split"</script><b>D10 six recipes via real !testme</b> &amp;');
    expect(missingFrom(text, ['C2 cert in git', 'D10 six recipes via real !testme', 'C1 repo split'])).toEqual(['C1 repo split']);
  });

  it('serves only files under the report', () => {
    expect(staticFile('/r/report', '/index.html#suites')).toBe('/r/report/index.html');
    expect(staticFile('/r/report', '/')).toBe('/r/report/index.html');
    expect(staticFile('/r/report', '/data/suites.json?x=1')).toBe('/r/report/data/suites.json');
    expect(staticFile('/r/report', '/../secret')).toBeUndefined();
    expect(staticFile('/r/report', '/%2e%2e/secret')).toBeUndefined();
    expect(staticFile('/r/report', '/%')).toBeUndefined();
  });

  it('shows the worst test of the worst item', () => {
    const suites = {
      uid: 'root',
      name: 'suites',
      children: [
        { uid: 'g1', name: 'C1 repo split', children: [{ uid: 't1', name: 'a', status: 'passed' }] },
        { uid: 'g4', name: 'C4 live rebuild', children: [{ uid: 't4', name: 'b', status: 'skipped' }] },
        { uid: 'g2', name: 'C2 cert in git', children: [{ uid: 't2a', name: 'c', status: 'passed' }, { uid: 't2b', name: 'd', status: 'failed' }] },
      ],
    };
    expect(pickTestCase(suites, sampleRecord())).toEqual({ item: 'C2 cert in git', route: 'suites/g2/t2b/' });
    expect(pickTestCase({ uid: 'root', name: 'suites', children: [] }, sampleRecord())).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { withCleanup } from '../reporting/run-record.ts';
import { sampleRecord } from '../reporting/run-record.fixture.ts';
import { executorInfo, htmlText, missingFrom, pickTestCase, planHistory, recordItems, staticFile } from './report.ts';

describe('report helpers', () => {
  it('feeds Allure the history from before this run, so a run reported twice counts once', () => {
    expect(planHistory('r1', { hasLatest: false, hasPrevious: false, buildOrder: 0 })).toEqual({ source: 'none', roll: false, buildOrder: 1 });
    expect(planHistory('r2', { latestRunId: 'r1', hasLatest: true, hasPrevious: false, buildOrder: 1 })).toEqual({ source: 'latest', roll: true, buildOrder: 2 });
    expect(planHistory('r2', { latestRunId: 'r2', hasLatest: true, hasPrevious: true, buildOrder: 2 })).toEqual({ source: 'previous', roll: false, buildOrder: 2 });
    expect(planHistory('r1', { latestRunId: 'r1', hasLatest: true, hasPrevious: false, buildOrder: 1 })).toEqual({ source: 'none', roll: false, buildOrder: 1 });
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

  it('names the build in the trend after the run', () => {
    expect(executorInfo('r7', 7)).toMatchObject({ buildName: 'run r7', buildOrder: 7, reportName: 'cc-ci Definition of Done' });
  });
});

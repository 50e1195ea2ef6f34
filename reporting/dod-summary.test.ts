import { describe, expect, it } from 'vitest';
import { withCleanup, withResults } from './run-record.ts';
import { emptyRecord, sampleRecord } from './run-record.fixture.ts';
import { renderSummary, verdictLine } from './dod-summary.ts';

// The Markdown the reporter wrote before the run record existed, for the same data.
/** What every lab summary says under its verdict: a lab PASS never reads like a real one. */
const FACED = 'target: lab (stand-ins: an Incus container, not a VM; nginx, not Traefik)\n\n';

const TABLE =
  '| item | verdict | evidence |\n| --- | --- | --- |\n| C1 repo split | PASS | 0 occurrences |\n' +
  '| C2 cert in git | FAIL | the served leaf is the wildcard_cert from git: served leaf fingerprint AA ≠ git cert BB (1 other check passed) |\n' +
  '| C4 live rebuild | SKIPPED | warm run |\n| D8 reproducible server | PASS | clean checkout \\| same |\n\n' +
  'Not checked in this run: C3, C5, C6, C7, D1, D2, D3, D4, D5, D6, D7, D9, D10.\n';

describe('the DoD summary', () => {
  it('renders the record as the reporter always wrote it', () => {
    expect(renderSummary(sampleRecord())).toBe(`# DoD summary\n\n**Run r9: FAIL** (2 PASS, 1 FAIL, 0 ERROR, 1 SKIPPED)\n\n${FACED}${TABLE}`);
  });

  it('adds the cleanup check as the last step, counted in the verdict line', () => {
    const record = withCleanup(sampleRecord(), { verdict: 'FAIL', evidence: 'still present after teardown: accept-r9', at: '2026-11-25T20:21:00.000Z' });
    expect(renderSummary(record)).toBe(
      `# DoD summary\n\n**Run r9: FAIL** (2 PASS, 2 FAIL, 0 ERROR, 1 SKIPPED)\n\n${FACED}${TABLE}\nLast step of the run:\n\n| check | verdict | evidence |\n| --- | --- | --- |\n| C6 cleanup after teardown | FAIL | still present after teardown: accept-r9 |\n`,
    );
  });

  it('says that setup could not complete, and why', () => {
    const record = withResults(emptyRecord(), { items: [], setupError: 'Incus API refused the client certificate', finishedAt: 'x' });
    expect(renderSummary(record)).toBe(
      '# DoD summary\n\n**Run r9: ERROR** (0 PASS, 0 FAIL, 0 ERROR, 0 SKIPPED): setup could not complete\n\n' +
        FACED +
        '| item | verdict | evidence |\n| --- | --- | --- |\n\n' +
        'Setup could not complete, so no item could be checked: Incus API refused the client certificate\n\n' +
        'Not checked in this run: C1, C2, C3, C4, C5, C6, C7, D1, D2, D3, D4, D5, D6, D7, D8, D9, D10.\n',
    );
  });

  it('gives the run the worst verdict, and ERROR when nothing was checked or an error escaped every check', () => {
    const line = (record: ReturnType<typeof sampleRecord>) => verdictLine(record.runId, record.verdict!);
    expect(line(withResults(emptyRecord('r1'), { items: [], finishedAt: 'x' }))).toBe('**Run r1: ERROR** (0 PASS, 0 FAIL, 0 ERROR, 0 SKIPPED): no check ran');
    const problem = withResults(emptyRecord('r2'), { items: sampleRecord().items.slice(0, 1), problem: '1 error(s) outside any check: boom', finishedAt: 'x' });
    expect(line(problem)).toBe('**Run r2: ERROR** (1 PASS, 0 FAIL, 0 ERROR, 0 SKIPPED): 1 error(s) outside any check: boom');
    // The problem outlives the cleanup check, which is counted as well.
    expect(line(withCleanup(problem, { verdict: 'PASS', evidence: 'gone', at: 'x' }))).toBe(
      '**Run r2: ERROR** (2 PASS, 0 FAIL, 0 ERROR, 0 SKIPPED): 1 error(s) outside any check: boom',
    );
    expect(line(withResults(emptyRecord('r3'), { items: sampleRecord().items.filter((item) => item.verdict === 'PASS'), finishedAt: 'x' }))).toBe(
      '**Run r3: PASS** (2 PASS, 0 FAIL, 0 ERROR, 0 SKIPPED)',
    );
  });

  it('names a real target by its server and instance type, with no stand-ins, and carries notes', () => {
    const record = { ...sampleRecord(), target: { kind: 'incus', server: 'https://b1.example.net:8443', instanceType: 'virtual-machine', standIns: [] } };
    expect(renderSummary(record)).toContain('\ntarget: incus https://b1.example.net:8443 (virtual-machine)\n');
    const noted = {
      ...sampleRecord(),
      target: { ...sampleRecord().target, notes: ['lab sabotage c2-served-cert-other-ca: nginx serves a cert from another CA'] },
    };
    expect(renderSummary(noted)).toContain('nginx, not Traefik)\nnote: lab sabotage c2-served-cert-other-ca: nginx serves a cert from another CA\n');
  });

  it('shows a record the reporter has not finished as such, never as a verdict', () => {
    const record = withCleanup(emptyRecord(), { verdict: 'PASS', evidence: 'gone', at: 'x' });
    expect(record.verdict).toBeUndefined();
    expect(renderSummary(record)).toContain('**Run r9: not finished**');
  });
});

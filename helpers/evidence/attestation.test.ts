import { describe, expect, it, onTestFinished } from 'vitest';
import { forgetSecrets, registerSecret } from '../common/redact.ts';
import {
  ageProblems,
  buildStatement,
  canonicalJson,
  factDifferences,
  formatAge,
  itemProblems,
  runFacts,
  secretFields,
  statementProblem,
  subjectProblems,
  type EvidenceRun,
} from './attestation.ts';

const SHA = (char: string) => char.repeat(64);

function run(): EvidenceRun {
  return {
    record: {
      runId: 'r1',
      mode: 'cold',
      target: { kind: 'lab', label: 'lab (stand-ins: a container)' },
      instance: { name: 'accept-r1', project: 'p' },
      commits: { base: 'b'.repeat(40), instance: 'c'.repeat(40) },
      harnessVersion: '0.1.0',
      startedAt: '2026-12-07T04:00:00.000Z',
      finishedAt: '2026-12-07T04:10:00.000Z',
      verdict: { overall: 'PASS' },
      items: [
        { id: 'C1', verdict: 'PASS', checks: [{ machine: 'prod-1 (the running cc-ci)' }] },
        { id: 'C6', verdict: 'PASS', checks: [] },
      ],
      cleanup: { verdict: 'PASS' },
    },
  };
}

const statement = (given = run()) =>
  buildStatement(given, new Map([['run.json', SHA('a')]]), new Date('2026-12-07T04:20:00.000Z'), { version: '0.1.0', commit: 'd'.repeat(40) });

describe('canonicalJson', () => {
  it('sorts keys at every depth, drops undefined, and adds no whitespace', () => {
    expect(canonicalJson({ b: [1, { z: true, a: null }], a: 'x\n', c: undefined })).toBe('{"a":"x\\n","b":[1,{"a":null,"z":true}]}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow('no form for NaN');
  });
});

describe('runFacts', () => {
  it("names the running cc-ci from the checks when there is no d8.json, and ignores another run's d8.json", () => {
    const given = { ...run(), d8: { runId: 'other', running: { host: 'elsewhere', toplevel: '/nix/store/x' } } };
    const facts = runFacts(given);
    expect(facts.machines).toEqual({ throwaway: 'accept-r1', running: 'prod-1', project: 'p' });
    expect(facts.system).toBeNull();
  });
});

describe('subjectProblems', () => {
  it('names each changed, removed, uncovered and special file', () => {
    const subjects = [
      { name: 'run.json', digest: { sha256: SHA('a') } },
      { name: 'd8.json', digest: { sha256: SHA('b') } },
      { name: 'ledger.json', digest: { sha256: SHA('c') } },
    ];
    const tree = {
      files: new Map([
        ['run.json', SHA('a')],
        ['d8.json', SHA('e')],
        ['late.txt', SHA('f')],
      ]),
      strays: ['link (a symlink)'],
    };
    expect(subjectProblems(subjects, tree)).toEqual([
      `changed: d8.json (sha256 ${SHA('e').slice(0, 12)}…, signed ${SHA('b').slice(0, 12)}…)`,
      'removed: ledger.json',
      'not covered (added after signing): late.txt',
      'not a regular file: link (a symlink)',
    ]);
  });
});

describe('statementProblem', () => {
  it('takes back exactly what it wrote, and nothing re-serialised or of another predicate version', () => {
    const written = statement();
    expect(statementProblem(Buffer.from(canonicalJson(written))).statement).toEqual(written);
    expect(statementProblem(Buffer.from(JSON.stringify(written, null, 2))).problem).toContain('not in canonical form');
    expect(statementProblem(Buffer.from(canonicalJson({ ...written, predicateType: 'https://cc-ci-acceptance/attestation/run/v2' }))).problem).toContain(
      'this harness reads https://cc-ci-acceptance/attestation/run/v1',
    );
    expect(statementProblem(Buffer.from('{')).problem).toContain('not JSON');
  });
});

describe('factDifferences', () => {
  it('names each fact that moved, by item id, with both values', () => {
    const now = run();
    now.record.items = [{ ...now.record.items[0]!, verdict: 'FAIL' }, now.record.items[1]!];
    now.record.mode = 'warm';
    expect(factDifferences(statement().predicate, runFacts(now))).toEqual([
      'run.mode: the statement says "cold", run.json says "warm"',
      'items[C1].verdict: the statement says "PASS", run.json says "FAIL"',
    ]);
  });
});

describe('ageProblems and itemProblems', () => {
  it('says how old, and flags a time in the future', () => {
    const { predicate } = statement();
    expect(ageProblems(predicate, new Date('2026-12-07T05:00:00.000Z'), 3_600_000)).toEqual([]);
    expect(ageProblems(predicate, new Date('2026-12-08T06:10:00.000Z'), 86_400_000)).toEqual([
      'attested 25.8 h ago (2026-12-07T04:20:00.000Z), over --max-age 24 h',
      'run finished 26 h ago (2026-12-07T04:10:00.000Z), over --max-age 24 h',
    ]);
    expect(ageProblems(predicate, new Date('2026-12-07T03:00:00.000Z'), 86_400_000)[0]).toBe('attested 80 min in the future (2026-12-07T04:20:00.000Z)');
    expect(formatAge(3 * 86_400_000)).toBe('3 d');
  });

  it('holds C6 to its cleanup check after teardown too', () => {
    const given = run();
    delete given.record.cleanup;
    expect(itemProblems(statement(given).predicate, ['C1', 'C6', 'C7'])).toEqual(['C6 cleanup after teardown not recorded', 'C7 not in the run']);
  });
});

describe('secretFields', () => {
  it('finds a registered secret in any form redaction knows, naming the field and where it came from', () => {
    const secret = 'tok-9f8e7d6c5b4a3210';
    registerSecret(secret);
    onTestFinished(() => forgetSecrets());
    expect(secretFields(statement())).toEqual([]);
    const given = run();
    given.record.target.label = `incus ${encodeURIComponent(`${secret}/x`)}`;
    given.record.commits = { base: Buffer.from(secret).toString('hex') };
    expect(secretFields(statement(given))).toEqual([
      'predicate.target.label (from run.json, copied to target.label)',
      'predicate.commits.base (from run.json, copied to commits.base)',
    ]);
  });

  it('finds a private key by its shape, registered or not', () => {
    const given = run();
    given.record.target.label = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
    expect(secretFields(statement(given))).toEqual(['predicate.target.label (from run.json, copied to target.label)']);
  });
});

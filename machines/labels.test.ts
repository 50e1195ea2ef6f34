import { describe, expect, it } from 'vitest';
import { LABEL_EXPIRES, LABEL_OWNER, LABEL_RUN_ID, NAME_PREFIX, OWNER, instanceName, isExpired, isOurs, labelsFor, newRunId } from './labels.ts';

// Incus instance names are hostnames: one DNS label.
const VALID_INSTANCE_NAME = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

describe('newRunId', () => {
  it('is the UTC time to the second and a random suffix', () => {
    expect(newRunId(new Date('2024-05-06T07:08:09.123Z'))).toMatch(/^20240506t070809-[0-9a-z]{4}$/);
  });

  it('makes a valid instance name with the prefix, every time', () => {
    for (const date of [new Date(), new Date('1999-12-31T23:59:59.999Z'), new Date('9999-12-31T23:59:59Z')]) {
      for (let i = 0; i < 200; i++) {
        const name = instanceName(newRunId(date));
        expect(name).toMatch(VALID_INSTANCE_NAME);
        expect(name.length).toBeLessThanOrEqual(63);
        expect(name.startsWith(NAME_PREFIX)).toBe(true);
      }
    }
  });

  it('differs between two runs started in the same second', () => {
    const now = new Date();
    expect(newRunId(now)).not.toBe(newRunId(now));
  });
});

describe('labelsFor', () => {
  it('sets the owner, the run id and the expiry', () => {
    expect(labelsFor('20240506t070809-abcd', new Date('2024-05-06T09:08:09Z'))).toEqual({
      [LABEL_OWNER]: OWNER,
      [LABEL_RUN_ID]: '20240506t070809-abcd',
      [LABEL_EXPIRES]: '2024-05-06T09:08:09.000Z',
    });
    expect(Object.keys(labelsFor('x', new Date())).every((key) => key.startsWith('user.'))).toBe(true);
  });
});

describe('isOurs', () => {
  const runId = '20240506t070809-abcd';
  const ours = { name: instanceName(runId), config: labelsFor(runId, new Date()) };

  it('accepts an instance with both the name prefix and the owner label', () => {
    expect(isOurs(ours)).toBe(true);
  });

  it('refuses the real hosts and anything without the prefix, even when labelled', () => {
    expect(isOurs({ name: 'cc-nix-test', config: {} })).toBe(false);
    expect(isOurs({ name: 'lichen-staging', config: ours.config })).toBe(false);
    expect(isOurs({ name: `x-${ours.name}`, config: ours.config })).toBe(false);
  });

  it('refuses a prefixed instance without our owner label', () => {
    expect(isOurs({ name: ours.name, config: {} })).toBe(false);
    expect(isOurs({ name: ours.name, config: { ...ours.config, [LABEL_OWNER]: 'someone-else' } })).toBe(false);
    const { [LABEL_OWNER]: _owner, ...withoutOwner } = ours.config;
    expect(isOurs({ name: ours.name, config: withoutOwner })).toBe(false);
  });

  it('checks the run id when one is given', () => {
    expect(isOurs(ours, runId)).toBe(true);
    expect(isOurs(ours, '20240506t070809-zzzz')).toBe(false);
    const { [LABEL_RUN_ID]: _run, ...withoutRun } = ours.config;
    expect(isOurs({ name: ours.name, config: withoutRun })).toBe(true);
    expect(isOurs({ name: ours.name, config: withoutRun }, runId)).toBe(false);
  });
});

describe('isExpired', () => {
  const now = new Date('2024-05-06T12:00:00Z');
  const at = (expires?: string): { config: Record<string, string> } => ({ config: expires === undefined ? {} : { [LABEL_EXPIRES]: expires } });

  it('is true once the expiry has passed, from that instant on', () => {
    expect(isExpired(at('2024-05-06T11:59:59.999Z'), now)).toBe(true);
    expect(isExpired(at('2024-05-06T12:00:00.000Z'), now)).toBe(true);
  });

  it('is false before the expiry', () => {
    expect(isExpired(at('2024-05-06T12:00:00.001Z'), now)).toBe(false);
  });

  it('is false without a readable expiry, so that nothing unlabelled is ever swept', () => {
    expect(isExpired(at(), now)).toBe(false);
    expect(isExpired(at(''), now)).toBe(false);
    expect(isExpired(at('tomorrow-ish'), now)).toBe(false);
  });

  it('agrees with labelsFor', () => {
    const config = labelsFor('r', new Date(now.getTime() + 2 * 3_600_000));
    expect(isExpired({ config }, now)).toBe(false);
    expect(isExpired({ config }, new Date(now.getTime() + 2 * 3_600_000))).toBe(true);
  });
});

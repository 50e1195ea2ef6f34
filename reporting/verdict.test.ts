import { describe, expect, it } from 'vitest';
import { errorVerdict } from './verdict.ts';

describe('verdicts', () => {
  it('FAIL only for an assertion or a declared product failure; ERROR for everything else', () => {
    expect(errorVerdict({ name: 'AssertionError', message: 'expected 1 to be 2' })).toBe('FAIL');
    expect(errorVerdict({ stack: 'TlsVerificationError: TLS verification of 127.0.0.1:443 failed\n    at x' })).toBe('FAIL');
    expect(errorVerdict({ name: 'PemError', message: 'no PEM certificate found' })).toBe('FAIL');
    // Serialised HarnessError: its verdict survives even if its name does not.
    expect(errorVerdict({ name: 'Error', message: 'assertion-looking words', verdict: 'ERROR' })).toBe('ERROR');
    expect(errorVerdict({ stack: 'IncusError: SOCKS5 proxy unreachable\n    at y' })).toBe('ERROR');
    expect(errorVerdict({ name: 'TypeError', message: "Cannot read properties of undefined (reading 'x')" })).toBe('ERROR');
    expect(errorVerdict({ name: 'Error', message: 'Test timed out in 120000ms.' })).toBe('ERROR');
    expect(errorVerdict({ message: 'connect ECONNREFUSED 127.0.0.1:9' })).toBe('ERROR');
    expect(errorVerdict(undefined)).toBe('ERROR');
  });
});

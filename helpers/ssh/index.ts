/**
 * SSH to a host under test (ssh2), directly or through the SOCKS5 proxy, its host key pinned or
 * learned once per run: connection.ts.
 */
export { type SshSettingName, type HostKeyPolicy, type SshConnectOptions, type SshHost, SshError, sshFingerprint, connectSsh } from './connection.ts';

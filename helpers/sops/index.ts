/**
 * Our own sops codec (age key groups only), because no sops binary exists on these machines.
 * It reads and writes the sops 3.x file format: values AES-256-GCM encrypted under a data key,
 * the data key age-encrypted per recipient, and a MAC over every plaintext leaf.
 *
 * The MAC hashes leaves as sops's Go code sees them, so typing follows Go's yaml.v3 (for YAML)
 * and encoding/json (for JSON, where every number is a float64), not JavaScript's parsers.
 */
export { SopsError, type SopsErrorKind } from './error.ts';
export type { SopsAgeEntry, SopsMetadata } from './metadata.ts';
export { goFormatFloat } from './tree.ts';
export { parseAgeIdentities, recipientsOf } from './age.ts';
export { decryptSops, getSopsValue, topLevelStrings, type DecryptOptions, type SopsDocument } from './decrypt.ts';
export { encryptSops, SOPS_FORMAT_VERSION, type EncryptOptions } from './encrypt.ts';

/** `accept sops …` and `accept tls show …`: the verification toolkit, by hand. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { ConfigError } from '../helpers/common/errors.ts';
import { decryptSops, encryptSops, parseAgeIdentities } from '../helpers/sops/index.ts';
import { showServedChain } from '../helpers/tls/show.ts';

async function readInput(file: string | undefined, what: string): Promise<string> {
  if (!file) throw new ConfigError(what, 'is required');
  return readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(what, `cannot read ${file}: ${error.code ?? error.message}`);
  });
}

export async function sops(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'decrypt') {
    const { values, positionals } = parseArgs({ args: rest, options: { identity: { type: 'string' } }, allowPositionals: true });
    const identities = parseAgeIdentities(await readInput(values.identity, '--identity'), values.identity!);
    const file = positionals[0];
    const document = await decryptSops(await readInput(file, 'FILE'), { identities, source: file });
    process.stdout.write(`${JSON.stringify(document.data, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`);
    process.stderr.write(`✓ MAC verified; ${document.recipients.length} recipients; last modified ${document.lastModified}\n`);
    return 0;
  }
  if (action === 'encrypt') {
    const { values, positionals } = parseArgs({ args: rest, options: { age: { type: 'string' } }, allowPositionals: true });
    const recipients = (values.age ?? '')
      .split(',')
      .map((recipient) => recipient.trim())
      .filter(Boolean);
    if (recipients.length === 0 || recipients.some((recipient) => !recipient.startsWith('age1'))) {
      throw new ConfigError('--age', 'needs one or more age recipients (age1…), comma-separated');
    }
    const tree = parse(await readInput(positionals[0], 'FILE')) as unknown;
    if (!tree || typeof tree !== 'object' || Array.isArray(tree)) throw new ConfigError('FILE', 'must hold a YAML or JSON mapping');
    process.stdout.write(await encryptSops(tree as Record<string, unknown>, { recipients }));
    return 0;
  }
  throw new ConfigError('accept sops', `expected decrypt or encrypt; got ${JSON.stringify(action ?? '')}`);
}

export async function tls(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'show') throw new ConfigError('accept tls', `expected show; got ${JSON.stringify(action ?? '')}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: { servername: { type: 'string' }, ca: { type: 'string' }, socks: { type: 'string' } },
    allowPositionals: true,
  });
  if (!positionals[0]) throw new ConfigError('HOST:PORT', 'is required');
  if (!values.servername) throw new ConfigError('--servername', 'is required: the SNI name to ask for');
  if (!values.ca) throw new ConfigError('--ca', 'is required: the PEM file of the root(s) the chain must verify against');
  process.stdout.write(`${await showServedChain(positionals[0], { servername: values.servername, ca: values.ca, socks: values.socks })}\n`);
  return 0;
}

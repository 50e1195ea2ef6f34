/**
 * Every relative link in the docs (README.md and docs/**\/*.md) reaches a file of the repository,
 * and every #anchor into a Markdown file reaches one of its headings, slugged as GitHub does.
 * Links to the web (http(s):, mailto:) are not followed.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Link {
  line: number;
  target: string;
}

/** The text outside fenced code blocks (and code spans, unless `spans`), line numbers kept. */
function prose(markdown: string, spans: 'drop' | 'keep' = 'drop'): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return '';
    }
    if (marker) {
      fence = marker;
      return '';
    }
    return spans === 'keep' ? line : line.replace(/(`+)[\s\S]*?\1/g, '');
  });
}

/** Inline links and images `[text](target "title")`, and reference definitions `[ref]: target`. */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  prose(markdown).forEach((text, index) => {
    const line = index + 1;
    for (const match of text.matchAll(/\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      links.push({ line, target: match[1]!.replace(/^<(.*)>$/, '$1') });
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(text);
    if (definition) links.push({ line, target: definition[1]!.replace(/^<(.*)>$/, '$1') });
  });
  return links;
}

/** A heading's anchor as GitHub makes it: its text, lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link or image: its text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__|\*|_(?=\S)|~~)(.*?)\1/g, '$2');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file offers: its headings' slugs, repeats numbered as GitHub does. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose(markdown, 'keep')) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count ? `${base}-${count}` : base);
  }
  return anchors;
}

/** Whether a link leaves the repository: a URL scheme, or a protocol-relative address. */
const external = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');

/** What is wrong with each relative link of `file` (a repository path), or nothing. */
function brokenLinks(file: string, read: (path: string) => string | undefined = readRepoFile): string[] {
  const markdown = read(file) ?? '';
  const problems: string[] = [];
  for (const { line, target } of linksOf(markdown)) {
    if (external(target)) continue;
    const hash = target.indexOf('#');
    const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
    const fragment = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const where = `${file}:${line}: (${target})`;
    const path = pathPart === '' ? file : relative(ROOT, resolve(ROOT, pathPart.startsWith('/') ? pathPart.slice(1) : join(dirname(file), pathPart)));
    if (path.startsWith('..')) {
      problems.push(`${where} leaves the repository`);
      continue;
    }
    const text = pathPart === '' ? markdown : read(path);
    if (text === undefined) {
      problems.push(`${where} names ${path}, which does not exist`);
      continue;
    }
    if (fragment && path.endsWith('.md') && !anchorsOf(text).has(fragment.toLowerCase())) {
      problems.push(`${where} names #${fragment}, which no heading of ${path} gives`);
    }
  }
  return problems;
}

/** A file's text; '' for a directory (a link may name one); undefined when there is none. */
function readRepoFile(path: string): string | undefined {
  const full = join(ROOT, path);
  if (!existsSync(full)) return undefined;
  return statSync(full).isDirectory() ? '' : readFileSync(full, 'utf8');
}

function markdownUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return markdownUnder(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

const DOCS = ['README.md', ...markdownUnder('docs')].sort();

describe('the links of the docs', () => {
  it('covers README.md and every Markdown file under docs/', () => {
    expect(DOCS).toContain('README.md');
    expect(DOCS).toContain('docs/configuration.md');
  });

  it.each(DOCS)('every relative link of %s reaches a file, and each #anchor a heading', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });
});

describe('the link checker', () => {
  const files: Record<string, string> = {
    'docs/a.md': [
      '# Top',
      'See [b](b.md#the-b1-profile), [up](../README.md), [self](#top) and ![img](pic.png "a picture").',
      'Not links: `[x](nowhere.md)`, [web](https://example.net/x.md), [mail](mailto:a@b.c).',
      '```',
      '[in a fence](gone.md)',
      '```',
      '[ref]: missing.md',
      'A [typo](b.md#no-such-heading) and [a lost file](c.md).',
    ].join('\n'),
    'docs/b.md': '# B\n\n## The b1 profile\n',
    'README.md': '# Readme\n',
  };
  const read = (path: string): string | undefined => files[path];

  it('reports a missing file and a missing heading, and nothing else', () => {
    expect(brokenLinks('docs/a.md', read)).toEqual([
      'docs/a.md:2: (pic.png) names docs/pic.png, which does not exist',
      'docs/a.md:7: (missing.md) names docs/missing.md, which does not exist',
      'docs/a.md:8: (b.md#no-such-heading) names #no-such-heading, which no heading of docs/b.md gives',
      'docs/a.md:8: (c.md) names docs/c.md, which does not exist',
    ]);
  });

  it('slugs headings as GitHub does', () => {
    expect(slug("The builder's session (`accept watch`)")).toBe('the-builders-session-accept-watch');
    expect(slug('Required with `ACCEPT_TARGET=incus`')).toBe('required-with-accept_targetincus');
    expect(slug('Worker projects: several cold runs at once')).toBe('worker-projects-several-cold-runs-at-once');
    expect(slug('C3 on the host: every secret-looking file accounted for')).toBe('c3-on-the-host-every-secret-looking-file-accounted-for');
    expect([...anchorsOf('# A\n## A\n## A\n')]).toEqual(['a', 'a-1', 'a-2']);
    expect([...anchorsOf('## Run `accept watch`\n```\n# not a heading\n```\n')]).toEqual(['run-accept-watch']);
  });
});

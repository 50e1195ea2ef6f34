/**
 * Many fixed byte strings found in one pass over a buffer (Aho-Corasick). The npm packages
 * for it match JavaScript strings, not bytes, so a git object or a log would have to be decoded
 * first; this one reads bytes, folds ASCII case on request, and keeps its tables flat.
 *
 * Memory stays small with thousands of patterns: the root and its children (the states visited
 * most) have a full 256-entry row, deeper states keep their few edges in one sorted list.
 */

const DENSE_DEPTH = 1;

export interface MultiMatchOptions {
  /** ASCII case-insensitive: patterns and text compared with A–Z as a–z. */
  ignoreCase?: boolean;
}

function fold(byte: number, ignoreCase: boolean): number {
  return ignoreCase && byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

export class MultiMatcher {
  readonly patternCount: number;
  private readonly ignoreCase: boolean;
  /** Per state: the row in `dense` (or -1), the start and end of its edges in `edgeBytes`/`edgeTargets`. */
  private readonly denseRow: Int32Array;
  private readonly dense: Int32Array;
  private readonly edgeStart: Int32Array;
  private readonly edgeEnd: Int32Array;
  private readonly edgeBytes: Uint8Array;
  private readonly edgeTargets: Int32Array;
  private readonly fail: Int32Array;
  /** Per state: the first pattern ending here, or -1; `nextOutput` chains the others (by pattern), `outputLink` the shorter suffix states that end patterns. */
  private readonly output: Int32Array;
  private readonly nextOutput: Int32Array;
  private readonly outputLink: Int32Array;
  private readonly lengths: Int32Array;

  constructor(patterns: readonly Buffer[], options: MultiMatchOptions = {}) {
    this.ignoreCase = options.ignoreCase ?? false;
    this.patternCount = patterns.length;
    this.lengths = Int32Array.from(patterns, (pattern) => pattern.length);

    // The trie, with edges in maps while it is built.
    const children: Array<Map<number, number>> = [new Map()];
    const depth: number[] = [0];
    const output: number[] = [-1];
    const nextOutput = new Int32Array(patterns.length).fill(-1);
    patterns.forEach((pattern, index) => {
      if (pattern.length === 0) throw new RangeError(`pattern ${index} is empty`);
      let state = 0;
      for (const raw of pattern) {
        const byte = fold(raw, this.ignoreCase);
        let next = children[state]!.get(byte);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          depth.push(depth[state]! + 1);
          output.push(-1);
          children[state]!.set(byte, next);
        }
        state = next;
      }
      nextOutput[index] = output[state]!;
      output[state] = index;
    });
    const states = children.length;

    // Failure links and output links, breadth first.
    const fail = new Int32Array(states);
    const outputLink = new Int32Array(states).fill(-1);
    const queue: number[] = [];
    for (const child of children[0]!.values()) queue.push(child);
    for (let head = 0; head < queue.length; head++) {
      const state = queue[head]!;
      for (const [byte, child] of children[state]!) {
        let f = fail[state]!;
        while (f !== 0 && !children[f]!.has(byte)) f = fail[f]!;
        const target = children[f]!.get(byte);
        fail[child] = target !== undefined && target !== child ? target : 0;
        outputLink[child] = output[fail[child]!]! >= 0 ? fail[child]! : outputLink[fail[child]!]!;
        queue.push(child);
      }
    }

    // Flat tables.
    const denseStates = [...Array(states).keys()].filter((state) => depth[state]! <= DENSE_DEPTH && children[state]!.size > 0);
    this.denseRow = new Int32Array(states).fill(-1);
    this.dense = new Int32Array(denseStates.length * 256).fill(-1);
    denseStates.forEach((state, row) => {
      this.denseRow[state] = row;
      for (const [byte, child] of children[state]!) this.dense[row * 256 + byte] = child;
    });
    let edges = 0;
    for (const map of children) edges += map.size;
    this.edgeStart = new Int32Array(states);
    this.edgeEnd = new Int32Array(states);
    this.edgeBytes = new Uint8Array(edges);
    this.edgeTargets = new Int32Array(edges);
    let at = 0;
    children.forEach((map, state) => {
      this.edgeStart[state] = at;
      for (const [byte, child] of [...map].sort((a, b) => a[0] - b[0])) {
        this.edgeBytes[at] = byte;
        this.edgeTargets[at++] = child;
      }
      this.edgeEnd[state] = at;
    });
    this.fail = fail;
    this.output = Int32Array.from(output);
    this.nextOutput = nextOutput;
    this.outputLink = outputLink;
  }

  private step(state: number, byte: number): number {
    for (;;) {
      const row = this.denseRow[state]!;
      if (row >= 0) {
        const next = this.dense[row * 256 + byte]!;
        if (next >= 0) return next;
      } else {
        const end = this.edgeEnd[state]!;
        for (let e = this.edgeStart[state]!; e < end; e++) {
          if (this.edgeBytes[e] === byte) return this.edgeTargets[e]!;
        }
      }
      if (state === 0) return 0;
      state = this.fail[state]!;
    }
  }

  /** Calls `found(pattern, end)` for every occurrence, overlapping ones included; `end` is one past its last byte. */
  forEach(text: Uint8Array, found: (pattern: number, end: number) => void): void {
    const { ignoreCase, output, nextOutput, outputLink } = this;
    let state = 0;
    for (let i = 0; i < text.length; i++) {
      state = this.step(state, fold(text[i]!, ignoreCase));
      for (let s = output[state]! >= 0 ? state : outputLink[state]!; s >= 0; s = outputLink[s]!) {
        for (let pattern = output[s]!; pattern >= 0; pattern = nextOutput[pattern]!) found(pattern, i + 1);
      }
    }
  }

  /** Occurrences of each pattern (overlapping ones counted), or undefined when there is none. */
  counts(text: Uint8Array): Int32Array | undefined {
    let counts: Int32Array | undefined;
    this.forEach(text, (pattern) => {
      counts ??= new Int32Array(this.patternCount);
      counts[pattern]! += 1;
    });
    return counts;
  }

  /** Byte ranges [start, end) of every occurrence, in order of their end. */
  ranges(text: Uint8Array): Array<{ pattern: number; start: number; end: number }> {
    const found: Array<{ pattern: number; start: number; end: number }> = [];
    this.forEach(text, (pattern, end) => found.push({ pattern, start: end - this.lengths[pattern]!, end }));
    return found;
  }
}

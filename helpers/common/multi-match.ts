/**
 * Many fixed byte strings found in one pass over a buffer (Aho-Corasick). The npm packages
 * for it match JavaScript strings, not bytes, so a git object or a log would have to be decoded
 * first; this one reads bytes, folds ASCII case on request, and keeps its tables flat.
 *
 * Memory stays small with thousands of patterns: the root and its children (the states visited
 * most) have a full 256-entry row, deeper states keep their few edges in one flat list.
 */

const DENSE_DEPTH = 1;

export interface MultiMatchOptions {
  /** ASCII case-insensitive: patterns and text compared with A–Z as a–z. */
  ignoreCase?: boolean;
}

function fold(byte: number, ignoreCase: boolean): number {
  return ignoreCase && byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

function grow(array: Int32Array, size: number, fill: number): Int32Array {
  const bigger = new Int32Array(size).fill(fill);
  bigger.set(array);
  return bigger;
}

function growBytes(array: Uint8Array, size: number): Uint8Array {
  const bigger = new Uint8Array(size);
  bigger.set(array);
  return bigger;
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

    // The trie, built in growable flat arrays: each state's edges are a linked list (most states have one).
    let capacity = 1024;
    let firstEdge: Int32Array = new Int32Array(capacity).fill(-1);
    let depth: Int32Array = new Int32Array(capacity);
    let output: Int32Array = new Int32Array(capacity).fill(-1);
    let edgeCapacity = 1024;
    let edgeByte: Uint8Array = new Uint8Array(edgeCapacity);
    let edgeTarget: Int32Array = new Int32Array(edgeCapacity);
    let edgeNext: Int32Array = new Int32Array(edgeCapacity);
    let states = 1;
    let edges = 0;
    const child = (state: number, byte: number): number => {
      for (let e = firstEdge[state]!; e >= 0; e = edgeNext[e]!) if (edgeByte[e] === byte) return edgeTarget[e]!;
      return -1;
    };
    const nextOutput = new Int32Array(patterns.length).fill(-1);
    patterns.forEach((pattern, index) => {
      if (pattern.length === 0) throw new RangeError(`pattern ${index} is empty`);
      let state = 0;
      for (const raw of pattern) {
        const byte = fold(raw, this.ignoreCase);
        let next = child(state, byte);
        if (next < 0) {
          if (states === capacity) {
            capacity *= 2;
            firstEdge = grow(firstEdge, capacity, -1);
            depth = grow(depth, capacity, 0);
            output = grow(output, capacity, -1);
          }
          if (edges === edgeCapacity) {
            edgeCapacity *= 2;
            edgeByte = growBytes(edgeByte, edgeCapacity);
            edgeTarget = grow(edgeTarget, edgeCapacity, 0);
            edgeNext = grow(edgeNext, edgeCapacity, 0);
          }
          next = states++;
          depth[next] = depth[state]! + 1;
          edgeByte[edges] = byte;
          edgeTarget[edges] = next;
          edgeNext[edges] = firstEdge[state]!;
          firstEdge[state] = edges++;
        }
        state = next;
      }
      nextOutput[index] = output[state]!;
      output[state] = index;
    });

    // Failure links and output links, breadth first.
    const fail = new Int32Array(states);
    const outputLink = new Int32Array(states).fill(-1);
    const queue = new Int32Array(states);
    let tail = 0;
    for (let e = firstEdge[0]!; e >= 0; e = edgeNext[e]!) queue[tail++] = edgeTarget[e]!;
    for (let head = 0; head < tail; head++) {
      const state = queue[head]!;
      for (let e = firstEdge[state]!; e >= 0; e = edgeNext[e]!) {
        const byte = edgeByte[e]!;
        const next = edgeTarget[e]!;
        let f = fail[state]!;
        while (f !== 0 && child(f, byte) < 0) f = fail[f]!;
        const target = child(f, byte);
        fail[next] = target >= 0 && target !== next ? target : 0;
        outputLink[next] = output[fail[next]!]! >= 0 ? fail[next]! : outputLink[fail[next]!]!;
        queue[tail++] = next;
      }
    }

    // Flat tables for the scan: a full row for the shallow states, sorted edge lists for the rest.
    this.denseRow = new Int32Array(states).fill(-1);
    let rows = 0;
    for (let state = 0; state < states; state++) if (depth[state]! <= DENSE_DEPTH && firstEdge[state]! >= 0) this.denseRow[state] = rows++;
    this.dense = new Int32Array(rows * 256).fill(-1);
    this.edgeStart = new Int32Array(states);
    this.edgeEnd = new Int32Array(states);
    this.edgeBytes = new Uint8Array(edges);
    this.edgeTargets = new Int32Array(edges);
    let at = 0;
    for (let state = 0; state < states; state++) {
      this.edgeStart[state] = at;
      const row = this.denseRow[state]!;
      for (let e = firstEdge[state]!; e >= 0; e = edgeNext[e]!) {
        if (row >= 0) this.dense[row * 256 + edgeByte[e]!] = edgeTarget[e]!;
        this.edgeBytes[at] = edgeByte[e]!;
        this.edgeTargets[at++] = edgeTarget[e]!;
      }
      this.edgeEnd[state] = at;
    }
    this.fail = fail;
    this.output = output.slice(0, states);
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

import { GyozaError } from "../../errors.js";
import { MAX_NESTING_DEPTH, MAX_WALK_NODES } from "./limits.js";
import { PickleDict, PickleList, PickleTuple, type PickleValue, pathComponent } from "./values.js";

export interface WalkedNode {
  readonly value: PickleValue;
  /** Key or index in the parent, Python-str()-ed; "" for the root. */
  readonly key: string;
  readonly parent: WalkedNode | null;
  /** 0 for the root. */
  readonly depth: number;
}

/**
 * Every node below `root` in pickle order (pre-order), without recursion: a hostile pickle can nest
 * values arbitrarily deep (TUPLE1 repeated) or make a list contain itself, so depth and node count
 * are bounded and exceeding them is a limit error rather than a stack overflow or a hang.
 */
export function* walkPickle(root: PickleValue, file?: string): Generator<WalkedNode> {
  const pending: WalkedNode[] = [{ value: root, key: "", parent: null, depth: 0 }];
  let visited = 0;
  while (pending.length > 0) {
    const node = pending.pop()!;
    if (++visited > MAX_WALK_NODES) {
      throw new GyozaError("limit", `pickle holds more than ${MAX_WALK_NODES} values`, { file });
    }
    if (node.depth > MAX_NESTING_DEPTH) {
      throw new GyozaError("limit", `pickle values nest deeper than ${MAX_NESTING_DEPTH} levels`, { file });
    }
    yield node;
    const children = childrenOf(node.value);
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, value] = children[i]!;
      pending.push({ value, key, parent: node, depth: node.depth + 1 });
    }
  }
}

/** Keys from the walk's root to `node` (fixture paths join them with "."). */
export function nodePath(node: WalkedNode): string[] {
  const path = new Array<string>(node.depth);
  for (let at: WalkedNode | null = node; at && at.depth > 0; at = at.parent) path[at.depth - 1] = at.key;
  return path;
}

/** Direct children of a container as (path component, value) pairs; none for leaves. */
export function childrenOf(value: PickleValue): [string, PickleValue][] {
  if (value instanceof PickleDict) {
    return Array.from(value.entries, ([key, child]) => [pathComponent(key), child]);
  }
  if (value instanceof PickleList || value instanceof PickleTuple) {
    return value.items.map((child, index) => [String(index), child]);
  }
  return [];
}

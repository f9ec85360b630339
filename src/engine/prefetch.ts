/**
 * Runs an async iterator up to `depth` items ahead of its consumer, so reads overlap with the
 * work and writes downstream. Memory stays bounded: at most `depth` items are in flight.
 */
export async function* prefetch<T>(source: AsyncIterable<T>, depth: number): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  const pull = () => {
    const next = iterator.next();
    next.catch(() => {}); // surfaced when awaited below; avoids an unhandled-rejection crash meanwhile
    queue.push(next);
  };
  try {
    for (let i = 0; i < depth; i++) pull();
    while (true) {
      const result = await queue.shift()!;
      if (result.done) return;
      pull();
      yield result.value;
    }
  } finally {
    await iterator.return?.();
  }
}

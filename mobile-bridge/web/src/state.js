// A value components can watch: `useValue(signal)` re-renders on `set`. Small
// on purpose: the app shares only its language, session and live status.
import { useEffect, useState } from 'preact/hooks';

export function signal(initial) {
  let value = initial;
  const watchers = new Set();
  return {
    get: () => value,
    set(next) {
      value = next;
      watchers.forEach((watch) => watch(next));
    },
    watch(fn) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
  };
}

export function useValue(sig) {
  const [value, setValue] = useState(sig.get());
  useEffect(() => {
    setValue(sig.get());
    return sig.watch(setValue);
  }, [sig]);
  return value;
}

// A value components can watch: `useValue(signal)` re-renders on `set`. Small
// on purpose: each app shares only a few such values (its language, session,
// sync or live status).
//
// `preact/hooks` is resolved from the app being built: the field app's vite
// config dedupes preact, so this file, which lives under server/web, never
// brings a second copy of preact into the field app.
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

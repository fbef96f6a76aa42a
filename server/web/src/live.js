// Live updates of the open territory: the server's event stream, and a
// counter per change that pages watch (`useLive`) to reload what they show.
import { useEffect, useRef } from 'preact/hooks';
import { followTerritory } from './api.js';
import { signal } from './state.js';

/** The last change: `{ seq, kind }` (kind `*` means anything may have changed). */
export const changes = signal({ seq: 0, kind: null });

/** Whether the event stream is open. */
export const live = {
  ...signal(false),
  /** Follows a territory until the returned function is called. */
  follow(territoryId) {
    const stop = followTerritory(
      territoryId,
      (kind) => changes.set({ seq: changes.get().seq + 1, kind }),
      (open) => live.set(open),
    );
    return () => {
      stop();
      live.set(false);
    };
  },
};

/**
 * Calls `reload` when a change of one of `kinds` arrives (at most once per
 * 300 ms: a phone syncing a notebook of 50 records is one reload, not 50).
 */
export function useLive(kinds, reload) {
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    let timer = null;
    const stop = changes.watch(({ kind }) => {
      if (kind !== '*' && kinds && !kinds.includes(kind)) return;
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        latest.current();
      }, 300);
    });
    return () => {
      stop();
      if (timer) clearTimeout(timer);
    };
  }, [kinds && kinds.join(',')]);
}

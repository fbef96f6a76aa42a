// Live updates of the open territory: the server's event stream, and a
// counter per change that pages watch (`useLive`) to reload what they show.
import { useEffect, useRef } from 'preact/hooks';
import { request } from '../shared/api.js';
import { signal } from '../shared/state.js';
import { credentialRefused } from '../shared/session.js';

/**
 * Follows the territory's server-sent events with fetch (EventSource cannot
 * send the token). Calls `onChange(kind)` for each change and `onStatus(true
 * | false)` as the stream opens or drops; reconnects after a pause. Returns a
 * function that stops it.
 */
function followTerritory(territoryId, onChange, onStatus) {
  let stopped = false;
  let controller = null;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await request(`/api/territories/${territoryId}/events`, {
          headers: { Accept: 'text/event-stream' },
          signal: controller.signal,
        });
        if (response.status === 401) {
          credentialRefused();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (event === 'ready') onStatus(true);
            if (event === 'changed') {
              let kind = '*';
              try {
                kind = JSON.parse(data).kind || '*';
              } catch {
                /* a change of everything */
              }
              onChange(kind);
            }
          }
        }
      } catch (error) {
        if (stopped) return;
      }
      onStatus(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

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

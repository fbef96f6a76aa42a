// The volunteers' field app. server/build.rs runs `npm ci` and `vite build`
// here with FIELDNOTES_WEB_OUT set to a directory under cargo's OUT_DIR; the
// server embeds what lands there and serves it at `/field/`.
//
// `fieldAppShell()` below emits what makes the app installable and usable
// offline, from the bundle itself, so nothing can drift out of date:
//   - manifest.webmanifest and the icons (drawn by scripts/icons.mjs);
//   - sw.js, the service worker, with the list of every built file (the
//     precache) and a version that is the hash of their contents: a new build
//     installs a new cache and the old one is deleted.
import { defineConfig } from 'vite';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { icons } from './scripts/icons.mjs';

const BASE = '/field/';
const THEME = '#065f46';

const manifest = {
  name: 'Fieldnotes — carnet de terrain',
  short_name: 'Fieldnotes',
  description: 'Observations, signalements et heures bénévoles, même sans réseau.',
  lang: 'fr',
  start_url: BASE,
  scope: BASE,
  id: BASE,
  display: 'standalone',
  orientation: 'portrait',
  background_color: '#ffffff',
  theme_color: THEME,
  icons: [
    { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
    { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
    { src: 'icons/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
  ],
};

function fieldAppShell() {
  let base = BASE;
  return {
    name: 'fieldnotes-field-shell',
    apply: 'build',
    enforce: 'post',
    configResolved(config) {
      base = config.base;
    },
    transformIndexHtml() {
      return [
        { tag: 'link', attrs: { rel: 'manifest', href: `${base}manifest.webmanifest` }, injectTo: 'head' },
        { tag: 'link', attrs: { rel: 'icon', type: 'image/png', href: `${base}icons/icon-192.png` }, injectTo: 'head' },
        { tag: 'link', attrs: { rel: 'apple-touch-icon', href: `${base}icons/icon-192.png` }, injectTo: 'head' },
        { tag: 'meta', attrs: { name: 'theme-color', content: THEME }, injectTo: 'head' },
      ];
    },
    generateBundle(_options, bundle) {
      const extra = { ...icons(), 'manifest.webmanifest': JSON.stringify(manifest, null, 2) + '\n' };
      for (const [fileName, source] of Object.entries(extra)) {
        this.emitFile({ type: 'asset', fileName, source });
      }
      // Every file of the build but the worker itself; index.html is the
      // shell, cached under the scope's own URL (what a navigation asks for).
      const contents = new Map(Object.entries(extra));
      for (const [name, item] of Object.entries(bundle)) {
        contents.set(name, item.type === 'chunk' ? item.code : item.source);
      }
      if (!contents.has('index.html')) this.error('index.html is not in the bundle yet');
      const files = [...contents.keys()]
        .filter((name) => name !== 'sw.js' && name !== 'precache.json' && !name.endsWith('.map'))
        .sort();
      const hash = createHash('sha256');
      for (const name of files) {
        hash.update(name).update('\0').update(contents.get(name)).update('\0');
      }
      const version = hash.digest('hex').slice(0, 16);
      const urls = files.map((name) => (name === 'index.html' ? base : base + name));
      const template = readFileSync(new URL('./src/sw.js', import.meta.url), 'utf8');
      const worker = template
        .replace('self.__PRECACHE_VERSION__', JSON.stringify(version))
        .replace('self.__PRECACHE_URLS__', JSON.stringify(urls, null, 2))
        .replace('self.__SCOPE__', JSON.stringify(base));
      if (worker.includes('self.__PRECACHE_')) this.error('sw.js: a placeholder was left unreplaced');
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: worker });
      this.emitFile({
        type: 'asset',
        fileName: 'precache.json',
        source: JSON.stringify({ version, urls }, null, 2) + '\n',
      });
    },
  };
}

export default defineConfig({
  base: BASE,
  resolve: {
    // The shared package (../../server/web/shared, imported by relative
    // paths, as are the schemas it reads) imports preact; resolved from its
    // own folder, that would be the coordinators' app's copy, a second preact
    // whose hooks would not work here. Dedupe resolves it from this app.
    dedupe: ['preact'],
  },
  // Nothing from a CDN; no public/ folder either: every asset is imported or
  // emitted by the plugin above.
  publicDir: false,
  plugins: [fieldAppShell()],
  build: {
    outDir: process.env.FIELDNOTES_WEB_OUT || 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 4096,
    sourcemap: false,
    target: 'es2022',
  },
});

// The coordinators' web app. server/build.rs runs `npm ci` and `vite build`
// with FIELDNOTES_WEB_OUT set to a directory under cargo's OUT_DIR; the
// server embeds what lands there and serves it at `/`.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  // Nothing from a CDN; no public/ folder either: every asset is imported.
  publicDir: false,
  build: {
    outDir: process.env.FIELDNOTES_WEB_OUT || 'dist',
    emptyOutDir: true,
    // Leaflet's marker images are inlined below this size; larger files are
    // emitted with a content hash the server serves as immutable.
    assetsInlineLimit: 4096,
    sourcemap: false,
    target: 'es2022',
  },
});

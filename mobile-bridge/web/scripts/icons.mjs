// The app's icons, drawn here rather than downloaded: a white leaf on the
// app's dark green, as PNG (8-bit RGBA, encoded with node's zlib). The vite
// build calls `icons()` and emits the files; `node scripts/icons.mjs [dir]`
// writes them to a folder to look at.
import { deflateSync } from 'node:zlib';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GREEN = [6, 95, 70];
const WHITE = [255, 255, 255];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function png(size, pixel) {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    const row = y * (size * 4 + 1);
    raw[row] = 0; // no filter
    for (let x = 0; x < size; x++) {
      // 4×4 supersampling for smooth edges.
      let acc = [0, 0, 0, 0];
      for (let sy = 0; sy < 4; sy++) {
        for (let sx = 0; sx < 4; sx++) {
          const [r, g, b, a] = pixel((x + (sx + 0.5) / 4) / size, (y + (sy + 0.5) / 4) / size);
          acc[0] += r * a; acc[1] += g * a; acc[2] += b * a; acc[3] += a;
        }
      }
      const o = row + 1 + x * 4;
      const alpha = acc[3] / 16;
      raw[o] = alpha ? Math.round(acc[0] / acc[3]) : 0;
      raw[o + 1] = alpha ? Math.round(acc[1] / acc[3]) : 0;
      raw[o + 2] = alpha ? Math.round(acc[2] / acc[3]) : 0;
      raw[o + 3] = Math.round(alpha * 255);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Whether (u, v), centred coordinates scaled so the leaf spans ±1, is on the leaf. */
function onLeaf(u, v) {
  // Rotate by 45° so the leaf points to the top right.
  const c = Math.SQRT1_2;
  const x = c * (u - v);
  const y = c * (u + v);
  // The leaf: the intersection of two discs (a vesica), tips at x = ±1, 1 wide.
  const R = 1.25;
  const d = 0.75;
  const leaf = x * x + (y - d) ** 2 <= R * R && x * x + (y + d) ** 2 <= R * R;
  // The midrib, in green, and a short stem below the leaf.
  const rib = Math.abs(y) < 0.045 && x > -0.85 && x < 0.8;
  const stem = Math.abs(y) < 0.06 && x <= -0.9 && x > -1.25;
  if (rib) return 'rib';
  return leaf || stem;
}

/** `maskable`: full-bleed background, leaf inside the 80 % safe circle. */
function draw(size, { maskable }) {
  const scale = maskable ? 0.3 : 0.36;
  const radius = maskable ? 0 : 0.18;
  return png(size, (px, py) => {
    // Rounded square background (a plain square when maskable).
    const qx = Math.max(Math.abs(px - 0.5) - (0.5 - radius), 0);
    const qy = Math.max(Math.abs(py - 0.5) - (0.5 - radius), 0);
    if (Math.hypot(qx, qy) > radius) return [0, 0, 0, 0];
    const hit = onLeaf((px - 0.5) / scale, (py - 0.5) / scale);
    if (hit === 'rib') return [...GREEN, 1];
    return hit ? [...WHITE, 1] : [...GREEN, 1];
  });
}

/** The icon files: name → PNG bytes. */
export function icons() {
  return {
    'icons/icon-192.png': draw(192, { maskable: false }),
    'icons/icon-512.png': draw(512, { maskable: false }),
    'icons/icon-maskable-512.png': draw(512, { maskable: true }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] || 'icons-preview';
  for (const [name, bytes] of Object.entries(icons())) {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, bytes);
    console.log(`${path}: ${bytes.length} bytes`);
  }
}

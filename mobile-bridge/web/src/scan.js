// Reads the invitation's QR code with the camera: the browser's own
// BarcodeDetector when it has one, else jsQR (loaded only then) on video
// frames drawn to a canvas. The payload is `{"code": "…", "server": "…"}`;
// a bare code is accepted too.
export async function startScan(video, onPayload, onError) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (e) {
    onError(e.message || String(e));
    return () => {};
  }
  video.srcObject = stream;
  video.setAttribute('playsinline', '');
  await video.play().catch(() => {});
  let stopped = false;
  let detector = null;
  if ('BarcodeDetector' in window) {
    try {
      detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    } catch {
      detector = null;
    }
  }
  const jsQR = detector ? null : (await import('jsqr')).default;
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });

  const stop = () => {
    stopped = true;
    stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
  };

  const tick = async () => {
    if (stopped) return;
    try {
      let text = null;
      if (video.readyState >= 2) {
        if (detector) {
          const codes = await detector.detect(video);
          if (codes.length) text = codes[0].rawValue;
        } else {
          const scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
          canvas.width = Math.round(video.videoWidth * scale);
          canvas.height = Math.round(video.videoHeight * scale);
          context.drawImage(video, 0, 0, canvas.width, canvas.height);
          const image = context.getImageData(0, 0, canvas.width, canvas.height);
          const found = jsQR(image.data, image.width, image.height, { inversionAttempts: 'dontInvert' });
          if (found) text = found.data;
        }
      }
      if (text) {
        const payload = parsePayload(text);
        if (payload) {
          stop();
          onPayload(payload);
          return;
        }
      }
    } catch (e) {
      onError(e.message || String(e));
      stop();
      return;
    }
    setTimeout(tick, 200);
  };
  tick();
  return stop;
}

export function parsePayload(text) {
  const trimmed = String(text).trim();
  try {
    const value = JSON.parse(trimmed);
    if (value && typeof value.code === 'string') return { code: value.code, server: value.server || null };
  } catch {
    // not JSON: a bare code
  }
  return /^[A-Za-z0-9-]{4,64}$/.test(trimmed) ? { code: trimmed, server: null } : null;
}

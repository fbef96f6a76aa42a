// Files the API serves behind the bearer credential (exports, report CSVs):
// a link cannot send the Authorization header, so the file is fetched with
// it and handed to the browser as a blob to save.
import * as api from '../shared/api.js';

/** The file name a response's `Content-Disposition` gives, else `fallback`. */
function fileName(response, fallback) {
  const disposition = response.headers.get('Content-Disposition') || '';
  const match = /filename="?([^";]+)"?/.exec(disposition);
  return match ? match[1] : fallback;
}

/**
 * Fetches `path` with the credential and saves it as a download; resolves
 * to `{ name, size }`, or rejects with the server's `ApiError`.
 */
export async function download(path, fallbackName) {
  const response = await api.request(path);
  if (!response.ok) throw await api.ApiError.of(response);
  const blob = await response.blob();
  const name = fileName(response, fallbackName);
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has handed the blob to the browser's download by the next task.
  setTimeout(() => URL.revokeObjectURL(url), 0);
  return { name, size: blob.size };
}

/** Small formatting helpers for the CLI's output. */

/** 12345 → "12,345". */
export function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Milliseconds, readable: "850 ms", "2.4 s". */
export function duration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Per second, from a count over milliseconds. */
export function rate(n: number, ms: number): number {
  return ms > 0 ? (n * 1000) / ms : 0;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A one-line preview of a payload: the text, quoted (JSON escapes), cut to `max` characters;
 * or a hex preview when it is not printable UTF-8.
 */
export function preview(data: Uint8Array, max = 60): string {
  if (data.length === 0) return "(empty)";
  let text: string | undefined;
  try {
    text = decoder.decode(data);
  } catch {
    text = undefined;
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
  if (text !== undefined && !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) {
    const cut = text.length > max;
    const shown = JSON.stringify(cut ? text.slice(0, max) : text);
    return cut ? `${shown}… (${count(data.length)} B)` : shown;
  }
  const bytes = Math.min(data.length, Math.floor(max / 2));
  const hex = Buffer.from(data.buffer, data.byteOffset, bytes).toString("hex");
  return `<binary ${count(data.length)} B: ${hex}${data.length > bytes ? "…" : ""}>`;
}

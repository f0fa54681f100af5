/**
 * Node URLs often carry a provider's key in the path or query (`wss://host/<token>`,
 * `?api-key=`): logs, errors, metric labels and /admin/status show only scheme and host (docs/architecture.md, "Data and secrets").
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}`
  } catch {
    return '[invalid url]'
  }
}

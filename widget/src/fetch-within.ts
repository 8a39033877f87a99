// fetch() that gives up after a deadline or when the call is cancelled, whichever
// comes first. Every request the widget makes before joining a room goes through it.

/** Resolves with the response headers' arrival; rejects on any failure, abort or timeout. */
export async function fetchWithin(
  url: string,
  init: RequestInit,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const onAbort = () => controller.abort();
  if (signal.aborted) controller.abort();
  signal.addEventListener("abort", onAbort);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

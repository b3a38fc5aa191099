// Small HTTP reads for tests that send traffic through a balancer.

/** The body of one GET (2 s bound), undefined when it failed or did not answer 2xx. */
export async function getText(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

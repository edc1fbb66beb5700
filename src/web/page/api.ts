/** The page's calls to its own server (src/web/server.ts). */
export interface Me {
  identity: string;
  via: 'proxy' | 'cookie';
  canLogout: boolean;
}
export interface Place {
  target: string;
  namespace: string;
  pod: string;
  container: string;
}
export interface Picker {
  identity: string;
  places: Place[];
  truncated: boolean;
}

export type Answer<T> = { ok: true; value: T } | { ok: false; status: number; message: string };

async function call<T>(path: string, init?: RequestInit): Promise<Answer<T>> {
  let res: Response;
  try {
    res = await fetch(path, { credentials: 'same-origin', ...init });
  } catch {
    return { ok: false, status: 0, message: 'the bridge cannot be reached; try again' };
  }
  const body = (await res.json().catch(() => null)) as (T & { error?: string }) | null;
  if (!res.ok || body === null) return { ok: false, status: res.status, message: body?.error ?? `the bridge answered ${res.status}` };
  return { ok: true, value: body };
}

export const me = () => call<Me>('/api/me');
export const targets = () => call<Picker>('/api/targets');
export const login = (token: string) =>
  call<{ identity: string; target: string | null }>('/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }) });
export const logout = () => call<{ ok: true }>('/api/logout', { method: 'POST' });

// Credentials out of URLs before anyone sees them: a target's `user:pw@` and secret-looking query
// parameters (`?token=...`) become `***`. Pure; used wherever a stored or given URL is shown or kept.

/** Words that mark a query parameter as secret, wherever they appear in its name. */
const secretWords = new Set(['token', 'key', 'secret', 'password', 'passwd', 'pwd', 'auth', 'signature', 'sig', 'apikey', 'credential', 'credentials', 'jwt']);
/** Fragments that mark a name as secret even inside one word (`accesstoken`, `clientsecret`). */
const secretFragments = ['token', 'secret', 'passw', 'signature', 'apikey', 'credential'];

/**
 * True when a query parameter's name looks like it carries a secret: token, key, secret, password,
 * auth, signature, sig, access_token, api_key, X-Amz-Signature, apiKey, client_secret... but not
 * `monkey` or `author`. Names are split into words at punctuation and camelCase.
 */
export function isSecretName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
  if (words.some((w) => secretWords.has(w))) return true;
  const compact = words.join('');
  return secretFragments.some((f) => compact.includes(f));
}

/**
 * The URL with its userinfo replaced by `***@` and the value of every secret-looking query (or
 * fragment) parameter replaced by `***`; everything else is kept exactly as written, so a URL
 * without credentials comes back unchanged. Works on the text rather than through `new URL`, which
 * would normalize it (a trailing slash, re-encoded parameters) and fails on what it cannot parse.
 * Idempotent: redacting twice gives the same text.
 */
export function redactUrl(url: string): string {
  // The authority ends at the first '/', '?' or '#'; its last '@' ends the userinfo.
  const withoutUser = url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#]*@/, '$1***@');
  const hashAt = withoutUser.indexOf('#');
  const beforeHash = hashAt < 0 ? withoutUser : withoutUser.slice(0, hashAt);
  const fragment = hashAt < 0 ? null : withoutUser.slice(hashAt + 1);
  const queryAt = beforeHash.indexOf('?');
  const base = queryAt < 0 ? beforeHash : beforeHash.slice(0, queryAt);
  const query = queryAt < 0 ? null : beforeHash.slice(queryAt + 1);
  return (
    base +
    (query === null ? '' : `?${redactParameters(query)}`) +
    (fragment === null ? '' : `#${fragment.includes('=') ? redactParameters(fragment) : fragment}`)
  );
}

function redactParameters(params: string): string {
  return params
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      return isSecretName(decodeName(name)) ? `${name}=***` : pair;
    })
    .join('&');
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/**
 * xterm.js creates <style> elements for its cell sizes and theme. The page's CSP allows only
 * styles from our own files or carrying this response's nonce (security-headers.ts), so every
 * <style> created through this document gets the nonce. Imported first by app.ts.
 */
const nonce = document.querySelector<HTMLMetaElement>('meta[name="style-nonce"]')?.content ?? '';
const create = document.createElement.bind(document);
document.createElement = ((tag: string, options?: ElementCreationOptions) => {
  const element = create(tag, options);
  if (tag.toLowerCase() === 'style') element.nonce = nonce;
  return element;
}) as typeof document.createElement;
export {};

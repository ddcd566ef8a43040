// Small helpers every page shares.

// `fn` runs once `ms` after the last call (with that call's arguments); `.cancel()` drops a
// pending run.
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** `/`: the places this identity may open a terminal in, with a search box. */
import * as api from './api.ts';
import { $, el, fail } from './ui.ts';

export async function showPicker(identity: string): Promise<void> {
  document.title = 'podbridge';
  $('title').textContent = `podbridge — ${identity}`;
  const main = $('main');
  main.className = 'picker';
  main.replaceChildren(el('p', {}, 'Loading targets…'));
  const answer = await api.targets();
  if (!answer.ok) return fail(answer.message);
  const { places, truncated } = answer.value;
  const search = el('input', { type: 'search', id: 'picker-search', placeholder: 'Search namespaces, pods, containers', autocomplete: 'off' });
  const list = el('ul', { id: 'places' });
  const render = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter((w) => w !== '');
    const shown = places.filter((p) => words.every((w) => p.target.toLowerCase().includes(w)));
    list.replaceChildren(
      ...shown.map((p) =>
        el(
          'li',
          {},
          el('a', { href: `/t/${encodeURIComponent(p.target)}`, className: 'place' }, p.target),
          el('span', { className: 'where' }, p.namespace ? ` namespace ${p.namespace}, pod ${p.pod}, container ${p.container}` : ''),
        ),
      ),
    );
    if (shown.length === 0) list.append(el('li', { className: 'empty' }, places.length === 0 ? 'Nothing here you may enter: ask for a rule in the access policy.' : 'No match.'));
  };
  search.addEventListener('input', render);
  render();
  main.replaceChildren(search, list, ...(truncated ? [el('p', { className: 'note' }, 'Only the first places are listed: search, or type a login name into the address /t/NAME.')] : []));
  search.focus();
}

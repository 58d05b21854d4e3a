import { Liquid } from 'liquidjs';
const files = new Map([['/a.conf', 'line1\n{% include "_part" %}\n'], ['/_part', 'x\nuser={{ db.user2 }}\n'], ['/e.conf', 'ok\n{% include "_syn" %}'], ['/_syn', '\n\n{% if %}']]);
const fs = {
  exists: async (p) => files.has(p), existsSync: (p) => files.has(p),
  readFile: async (p) => { const v = files.get(p); if (v === undefined) throw new Error('ENOENT'); return v; },
  readFileSync: (p) => { const v = files.get(p); if (v === undefined) throw new Error('ENOENT'); return v; },
  resolve: (dir, file, ext) => '/' + file,
};
const liquid = new Liquid({ fs, root: ['/'], strictVariables: true, strictFilters: true, extname: '', renderLimit: 500, memoryLimit: 1e6, relativeReference: false });
for (const name of ['/a.conf', '/e.conf']) {
  try {
    const tpl = liquid.parse(files.get(name), name);
    const out = await liquid.render(tpl, { db: { user: 'u', n: 3, list: [1,2], 'weird-key': 'w' } });
    console.log(name, JSON.stringify(out));
  } catch (e) { let x = e; while (x) { console.log(name, x.name, JSON.stringify(x.message), x.token?.getPosition?.(), x.token?.file, x.token?.input?.length); x = x.originalError; } }
}

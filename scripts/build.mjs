// `npm run build`: bundles the CLI into dist/pmc.js, which bin/pmc runs (`npm run typecheck`
// is the type check). Loading ~80 separate modules cost pmc more start-up time than running
// them: one bundle makes `pmc --help` about as quick as Node itself. Each command's operation
// stays a separate chunk (dist/chunks/), loaded by the dynamic import in its handler, so SSH,
// the config schema and the planners load only when a command runs.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// CommonJS packages are left to Node, which loads them as before: inside an ES module bundle
// their require() calls of Node's modules would fail (ssh2 also loads native addons beside its
// files). execa is ESM but requires cross-spawn, which is CommonJS.
// yaml is bundled from its ES module build (the same code as its CommonJS one, which Node would
// load as some 60 files costing every run ~40 ms of CPU; there, yaml's rare warnings, e.g. a
// collection used as a key, go to console.warn instead of process.emitWarning).
const YAML_ESM = './node_modules/yaml/browser/index.js';
const external = ['ssh2', '@xmldom/xmldom', 'execa'];
const alias = { assert: './scripts/lazy-assert.mjs', 'escalade/sync': './scripts/yargs-find-up.mjs', yaml: YAML_ESM };

// esbuild puts each module in a chunk by the set of entry points (pmc.js and every dynamic
// import) that reach it, so the modules --help runs were spread over 17 small chunks beside
// pmc.js, each shared with a different set of commands, and Node's ES module loader spent more
// time on those files (~10 ms of CPU) than on their code. Every dynamic import is therefore given
// a stand-in that imports the CLI's entry as well as its target: then every entry point reaches
// all that pmc.js loads, and all of it lands in one chunk. `pmc --help` reads 3 files (pmc.js,
// that chunk, esbuild's helpers); a command still loads only its own chunks besides. (The
// stand-in re-exports with `export *`: a module imported lazily has no default export.)
const ENTRY = join(root, 'src/cli/main.ts');
const oneStartupChunk = {
  name: 'one-startup-chunk',
  setup(b) {
    b.onResolve({ filter: /^\./ }, (args) => args.kind === 'dynamic-import'
      ? { path: join(args.resolveDir, args.path), namespace: 'lazy', pluginData: { importer: args.resolveDir, target: args.path } }
      : undefined);
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({
      contents: `import ${JSON.stringify(ENTRY)};\nexport * from ${JSON.stringify(args.pluginData.target)};\n`,
      resolveDir: args.pluginData.importer,
      loader: 'js',
    }));
  },
};

// Node's modules are taken with process.getBuiltinModule instead of an import: for an import
// Node builds a module facade that reads every export, and node:fs's include getters that load
// its streams and node:util's parseArgs and MIME parsers (~2.5 ms of every run for fs, util
// and net, which yargs and pmc import at start). Each name is read when the chunk that uses it
// starts, as an import's would be bound; the names nothing uses are dropped (pure calls).
// Aliased names (yargs' `assert`) keep their alias.
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const builtinsWithoutFacade = {
  name: 'builtins-without-facade',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => isBuiltin(args.path) && !(args.path in alias)
      ? { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'builtin' }
      : undefined);
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => {
      const names = Object.keys(process.getBuiltinModule(args.path)).filter((name) => IDENTIFIER.test(name) && name !== 'default');
      return {
        contents: [
          `const m = process.getBuiltinModule(${JSON.stringify(args.path)});`,
          'export default m;',
          ...names.map((name) => `export const ${name} = /* @__PURE__ */ (() => m.${name})();`),
        ].join('\n'),
        loader: 'js',
      };
    });
  },
};

// zod bundles its messages in 60-odd languages (`z.locales`, 370 KB, half its chunk), which every
// command that reads pmc.yaml parsed; pmc's messages are English, and zod sets English itself
// (from locales/en.js, which stays). `z.locales` holds only `en` in the bundle.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => args.importer.includes('/node_modules/zod/')
      ? { path: join(args.resolveDir, '../locales/en-only.js'), namespace: 'zod-locales', pluginData: args.resolveDir }
      : undefined);
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: "export { default as en } from '../locales/en.js';\n",
      resolveDir: args.pluginData,
      loader: 'js',
    }));
  },
};

await rm(join(root, 'dist'), { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { pmc: ENTRY },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  external,
  alias,
  plugins: [oneStartupChunk, builtinsWithoutFacade, zodEnglishOnly],
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
});

const commonJs = Object.entries(result.metafile.inputs).filter(([, input]) => input.format === 'cjs').map(([path]) => path);
if (commonJs.length > 0) {
  console.error(`build: CommonJS modules were bundled and would fail at run time; add their package to \`external\` in scripts/build.mjs:\n  ${commonJs.join('\n  ')}`);
  process.exit(1);
}

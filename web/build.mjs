// Bundle web/src into web/static (shipped with the Python package).
//   node build.mjs          build
//   node build.mjs --check  build into a temporary folder and fail if web/static differs
import { build } from "esbuild";
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "collab-web-")) : join(here, "static");

// One bundle per page; each entry is a small module in src/ and imports its CSS
// (esbuild writes it next to the bundle as <page>.css, which the page loads).
const entries = ["list", "notebook", "tutor", "sandbox"]
  .map((name) => join(here, "src", `${name}.js`))
  .filter((path) => existsSync(path));

await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: false,
  legalComments: "none",
  loader: { ".woff2": "file", ".woff": "empty", ".ttf": "empty" },
  assetNames: "assets/[name]-[hash]",
  logLevel: "warning",
  metafile: false,
});

// The theme script runs before the page is parsed (a classic, blocking script in
// <head>), so it is an IIFE rather than a module.
await build({
  entryPoints: [join(here, "src", "theme.js")],
  outdir: out,
  bundle: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});

function files(root, prefix = "") {
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((name) => {
    const path = join(root, name);
    return statSync(path).isDirectory() ? files(path, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

if (check) {
  const shipped = join(here, "static");
  const built = files(out).sort();
  const have = files(shipped).filter((f) => !f.startsWith(".")).sort();
  const problems = [];
  for (const f of new Set([...built, ...have])) {
    if (!built.includes(f)) problems.push(`web/static/${f} is not built from web/src`);
    else if (!have.includes(f)) problems.push(`web/static/${f} is missing`);
    else if (!readFileSync(join(out, f)).equals(readFileSync(join(shipped, f))))
      problems.push(`web/static/${f} differs from a fresh build`);
  }
  rmSync(out, { recursive: true, force: true });
  if (problems.length) {
    console.error(problems.join("\n") + "\nrun: npm run --prefix web build");
    process.exit(1);
  }
  console.log(`web/static matches web/src (${built.length} files)`);
}

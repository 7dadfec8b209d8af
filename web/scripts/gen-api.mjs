// Regenerates src/api/schema.d.ts from the server's OpenAPI document.
//   npm run gen:api                 -> runs ../target/debug/dbapp openapi, saves openapi.json
//   npm run gen:api -- path/to.json -> uses that file instead
// openapi.json and src/api/schema.d.ts are both committed; CI regenerates and diffs them.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = resolve(web, "openapi.json");
const arg = process.argv[2];

if (arg) {
  const src = resolve(process.cwd(), arg);
  if (src !== out) copyFileSync(src, out);
} else {
  const bin = process.env.DBAPP_BIN ?? resolve(web, "../target/debug/dbapp");
  if (!existsSync(bin)) {
    console.error(`gen:api: ${bin} not found; run \`cargo build -p dbapp\` or pass a file`);
    process.exit(1);
  }
  const doc = execFileSync(bin, ["openapi"], { encoding: "utf8", maxBuffer: 64 << 20 });
  // Normalise formatting so the committed file diffs cleanly.
  writeFileSync(out, JSON.stringify(JSON.parse(doc), null, 2) + "\n");
}

execFileSync(
  resolve(web, "node_modules/.bin/openapi-typescript"),
  [out, "-o", resolve(web, "src/api/schema.d.ts")],
  { stdio: "inherit" },
);

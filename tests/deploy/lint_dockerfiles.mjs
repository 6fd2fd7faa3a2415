// Checks Dockerfiles against the Dockerfile grammar and instruction rules
// (dockerfile-utils, the checker behind editors' Dockerfile support),
// offline: unknown instructions, malformed arguments, bad flags. Every
// diagnostic is an error here. Exits 1 naming each, 0 when all are clean.
//
//   node tests/deploy/lint_dockerfiles.mjs Dockerfile...
import { readFileSync } from "node:fs";
import { validate } from "dockerfile-utils";

let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const d of validate(readFileSync(file, "utf8"))) {
    console.error(`${file}:${d.range.start.line + 1}: ${d.message}`);
    problems++;
  }
}
if (problems > 0) {
  console.error(`${problems} problem(s)`);
  process.exit(1);
}
console.log(`${process.argv.length - 2} Dockerfile(s) clean`);

// Validates Kubernetes manifests against the API's JSON schemas (Kubernetes
// 1.27, from kubernetes-models), offline: types, required fields, enums and
// formats, as the API server's schema checks them. Every document of every
// file named on the command line must be an object of a known apiVersion and
// kind, and valid. Exits 1 naming each problem, 0 with a count when all are
// good.
//
//   node tests/deploy/validate_manifests.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);

// "apps/v1" -> "kubernetes-models/apps/v1"; "v1" -> "kubernetes-models/v1".
function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  try {
    const module = require(`kubernetes-models/${apiVersion}`);
    return module[kind] ?? null;
  } catch {
    return null;
  }
}

let problems = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  documents.forEach((document, index) => {
    const where = `${file} document ${index + 1}`;
    if (document.errors.length > 0) {
      console.error(`${where}: not YAML: ${document.errors[0].message}`);
      problems++;
      return;
    }
    const object = document.toJS();
    if (object === null) return;  // an empty document, e.g. after a trailing ---
    const Model = modelFor(object.apiVersion, object.kind);
    if (!Model) {
      console.error(`${where}: unknown apiVersion/kind ${object.apiVersion}/${object.kind}`);
      problems++;
      return;
    }
    const name = `${object.kind} ${object.metadata?.name ?? "(no name)"}`;
    try {
      new Model(object).validate();
    } catch (error) {
      const details = (error.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join("; ");
      console.error(`${where} (${name}): ${details || error.message}`);
      problems++;
      return;
    }
    checked++;
  });
}
if (problems > 0) {
  console.error(`${problems} invalid manifest(s)`);
  process.exit(1);
}
console.log(`${checked} manifests valid against the Kubernetes 1.27 schemas`);

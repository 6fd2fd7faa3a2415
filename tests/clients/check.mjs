// The client tests' one assertion: a failed check names itself and ends the
// run with exit code 1; passed() counts the rest.
let passedChecks = 0;

export function check(condition, what, detail = "") {
  if (!condition) {
    console.error(`FAILED: ${what} ${detail}`);
    process.exit(1);
  }
  ++passedChecks;
}

export function passed() {
  return passedChecks;
}

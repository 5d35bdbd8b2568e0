// What the browser tests share: a list of checks that keeps going after a
// failure, so one run names everything that is wrong.
export function checks() {
  const failures = [];
  let passed = 0;
  function check(what, ok, detail = "") {
    if (ok) {
      passed++;
      console.log(`  ok    ${what}`);
    } else {
      failures.push(`${what}${detail ? ` (${detail})` : ""}`);
      console.log(`  FAIL  ${what}${detail ? ` (${detail})` : ""}`);
    }
    return ok;
  }
  return { check, failures, passed: () => passed };
}

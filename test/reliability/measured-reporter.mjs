// A vitest reporter that keeps what the fault-scenario tests measured: every annotation of type
// `measured` (`await annotate('...', 'measured')` in a test), with the test's state, written as JSON to
// the file named by LOSSLESS_MEASURED_OUT when the run ends. test/reliability/write-doc.mjs turns it
// into the table of docs/reliability.md.

import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

export default class MeasuredReporter {
  /** @type {Map<string, { file: string, name: string, measured: string[] }>} */
  #tests = new Map();
  #root = process.cwd();

  onInit(vitest) {
    this.#root = vitest.config.root;
  }

  #entry(testCase) {
    let entry = this.#tests.get(testCase.id);
    if (entry === undefined) {
      entry = { file: relative(this.#root, testCase.module.moduleId), name: testCase.fullName, measured: [] };
      this.#tests.set(testCase.id, entry);
    }
    return entry;
  }

  onTestCaseAnnotate(testCase, annotation) {
    if (annotation.type === 'measured') this.#entry(testCase).measured.push(annotation.message);
  }

  onTestCaseResult(testCase) {
    this.#entry(testCase).state = testCase.result().state;
  }

  onTestRunEnd() {
    const out = process.env.LOSSLESS_MEASURED_OUT;
    if (out === undefined) return;
    writeFileSync(out, `${JSON.stringify([...this.#tests.values()], null, 2)}\n`);
  }
}

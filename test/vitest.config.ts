import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Runs whole-suite-logs.e2e.test.ts after every other file, so it sees every log line. */
class LastFileSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isLast = (f: TestSpecification) => f.moduleId.endsWith('whole-suite-logs.e2e.test.ts');
    return [...sorted.filter((f) => !isLast(f)), ...sorted.filter(isLast)];
  }
}

export default defineConfig({
  test: {
    include: ['**/*.e2e.test.ts'],
    exclude: ['node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // End-to-end files start real services and child processes; two cores are all we have.
    fileParallelism: false,
    // Searches every service log line of the whole run for planted secrets.
    globalSetup: ['./global-setup.ts'],
    sequence: { sequencer: LastFileSequencer },
  },
});

import assert from 'node:assert/strict';

/** A CLI run that must fail: exit code 1, nothing on stdout, one line on stderr matching `message`. */
export async function assertOneLineFailure(pending: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(pending, (err: { code: number; stdout: string; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.equal(err.stdout, '');
    assert.equal(err.stderr.trim().split('\n').length, 1, err.stderr);
    assert.match(err.stderr, message);
    return true;
  });
}

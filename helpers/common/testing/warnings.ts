/** For tests: the process warnings (by code, e.g. DEP0123) that come while `work` runs. */
export async function warningsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const codes: string[] = [];
  const onWarning = (warning: Error & { code?: string }): void => {
    codes.push(warning.code ?? warning.name);
  };
  process.on('warning', onWarning);
  try {
    await work();
    // process.emitWarning emits on a later tick: let those run before looking.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  return codes;
}

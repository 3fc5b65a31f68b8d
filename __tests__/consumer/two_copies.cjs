/**
 * Two copies of tfjs-core in one process, as npm nesting or a bundler mixing builds produces: the
 * copy at process.argv[2] (another directory) loads first, then the package, which resolves its own.
 * The package must refuse at import with its explanation; prints the error message.
 */
require(process.argv[2]);
try {
  require('tfjs-batchnorm');
} catch (e) {
  console.log(e.message);
  process.exit(0);
}
console.log('tfjs-batchnorm loaded without noticing the second tfjs-core');
process.exit(1);

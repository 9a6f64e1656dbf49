// valibot (the options schemas of every package) names typescript as an optional peer, for its types.
// Every package here has typescript as a devDependency, so pnpm would resolve valibot *with* it and
// `pnpm deploy --prod` (the Kubernetes image) would ship the compiler, 30 MB, to production. Users
// installing from the registry do not get it either: an optional peer is only linked when present.
module.exports = {
  hooks: {
    readPackage(pkg) {
      if (pkg.name === 'valibot' && pkg.peerDependencies?.typescript !== undefined) {
        delete pkg.peerDependencies.typescript;
        if (pkg.peerDependenciesMeta !== undefined) delete pkg.peerDependenciesMeta.typescript;
      }
      return pkg;
    },
  },
};

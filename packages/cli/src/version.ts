// The package version, printed by `lossless --version`. A unit test keeps it equal to package.json's.
export const VERSION = '0.1.0';

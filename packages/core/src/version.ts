// The package version, written into the metadata of every instance lossless registers.
// A unit test keeps it equal to package.json's.
export const VERSION = '0.1.0';

// express 4 is installed under the alias `express4` beside express 5; its API is the same for
// what these tests use, so it borrows express 5's types.
declare module 'express4' {
  import express from 'express';
  export default express;
}

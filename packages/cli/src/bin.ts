#!/usr/bin/env node
// The `lossless` executable. Everything happens in main(), which tests call in-process.

import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
/** The `jetstream-iter` executable (package.json `bin`). */
import { main } from "./program.js";

main(process.argv.slice(2));

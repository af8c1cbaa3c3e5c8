/** The core scenarios against v2's newest release of the declared range (test/matrix/cells.ts). */
import { V2_NEWEST } from "./cells.js";
import { matrixScenarios } from "./scenarios.js";

matrixScenarios(V2_NEWEST);

/** The core scenarios against v3's newest release of the declared range (test/matrix/cells.ts). */
import { V3_NEWEST } from "./cells.js";
import { matrixScenarios } from "./scenarios.js";

matrixScenarios(V3_NEWEST);

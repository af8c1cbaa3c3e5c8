/** The core scenarios against v3's oldest release of the declared range (test/matrix/cells.ts). */
import { V3_OLDEST } from "./cells.js";
import { matrixScenarios } from "./scenarios.js";

matrixScenarios(V3_OLDEST);

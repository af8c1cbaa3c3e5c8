/** The core scenarios against v2's oldest release of the declared range (test/matrix/cells.ts). */
import { V2_OLDEST } from "./cells.js";
import { matrixScenarios } from "./scenarios.js";

matrixScenarios(V2_OLDEST);

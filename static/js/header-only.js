import { mountHeader } from "./header.js"; mountHeader("指挥中心");

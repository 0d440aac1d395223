// @ts-check
// Run as a blocking <script> in every page's <head> (built as a classic
// script): sets <html data-theme> before anything is painted, so a dark page
// never flashes white. See ./lib/theme.js.
import { applyTheme } from "./lib/theme.js";

applyTheme();

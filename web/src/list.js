// @ts-check
// Entry of the list page (`/`): your notebooks, those shared with you, sharing.
import "./list/list.css";
import { mountList } from "./list/app.js";

mountList(/** @type {HTMLElement} */ (document.getElementById("app")));

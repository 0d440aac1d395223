// @ts-check
// Entry of the tutor dashboard (`/tutor`).
import "./tutor/tutor.css";
import { mountTutor } from "./tutor/app.js";

mountTutor(/** @type {HTMLElement} */ (document.getElementById("app")));

// esbuild bundles the CSS a page imports (`import "./list.css"`): such imports have no exports.
declare module "*.css";

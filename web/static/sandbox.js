var l=`
:root { color-scheme: light; --fg: #1f2328; --stripe: #f5f5f5; --rule: #999; --error: #cf222e; }
:root[data-theme=dark] { color-scheme: dark; --fg: #e6edf3; --stripe: #161b22; --rule: #3d444d; --error: #f85149; }
html, body { margin: 0; padding: 0; background: transparent; }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--fg); overflow-x: auto; overflow-y: hidden; }
#out { display: flow-root; padding: 2px 0; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
table { border-collapse: collapse; border-spacing: 0; font-size: 12px; }
thead { border-bottom: 1px solid var(--rule); vertical-align: bottom; }
th, td { padding: 4px 8px; text-align: right; vertical-align: middle; border: none; }
th { font-weight: 600; }
tbody tr:nth-child(odd) { background: var(--stripe); }
tbody tr:hover { background: rgba(66, 165, 245, .2); }
img, svg { max-width: 100%; height: auto; }
.error { color: var(--error); white-space: pre-wrap; }
`;function s(e){document.documentElement.dataset.theme=e==="dark"?"dark":"light"}s(new URLSearchParams(location.search).get("theme"));var n=document.createElement("div");n.id="out";var c=-1;function r(){let e=document.body.getBoundingClientRect(),t=document.documentElement.scrollWidth>document.documentElement.clientWidth?16:0,o=Math.ceil(Math.max(e.bottom,n.getBoundingClientRect().bottom))+t;o!==c&&(c=o,window.parent.postMessage({type:"height",height:o},"*"))}function m(e){for(let t of Array.from(e.querySelectorAll("script"))){let o=document.createElement("script");for(let a of Array.from(t.attributes))o.setAttribute(a.name,a.value);o.textContent=t.textContent,t.replaceWith(o)}}function p(e){let t=document.createElement("pre");t.className="error",t.textContent=e,n.append(t)}var d=e=>Array.isArray(e)?e.join(""):String(e??""),u={"text/html"(e){let t=document.createElement("div");t.innerHTML=d(e),n.append(t),m(t)},"image/svg+xml"(e){let t=document.createElement("div");t.innerHTML=d(e),n.append(t)},"application/javascript"(e){let t=document.createElement("div");n.append(t);try{new Function("element",d(e))(t)}catch(o){p(`Javascript error adding output!
${o}`)}},"text/plain"(e){let t=document.createElement("pre");t.textContent=d(e),n.append(t)}},h=["text/html","image/svg+xml","application/javascript","text/plain"],b={render(e){let t=e.bundle&&typeof e.bundle=="object"?e.bundle:{};document.body.replaceChildren(n),n.replaceChildren();let o=h.find(a=>a in t);o&&u[o](t[o]),r()},theme(e){s(e.theme)}};window.addEventListener("message",e=>{if(e.source!==window.parent||!e.data||typeof e.data!="object")return;let t=b[String(e.data.type)];t&&t(e.data)});function i(){let e=document.createElement("style");e.textContent=l,document.head.append(e),document.body.append(n),new ResizeObserver(r).observe(document.body),new MutationObserver(r).observe(document.body,{childList:!0,subtree:!0,attributes:!0,characterData:!0}),window.addEventListener("load",r),document.addEventListener("load",r,!0),window.parent.postMessage({type:"ready"},"*")}document.body?i():document.addEventListener("DOMContentLoaded",i);

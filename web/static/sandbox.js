var s=`
html, body { margin: 0; padding: 0; background: transparent; }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2328; overflow-x: auto; overflow-y: hidden; }
#out { display: flow-root; padding: 2px 0; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
table { border-collapse: collapse; border-spacing: 0; font-size: 12px; }
thead { border-bottom: 1px solid #999; vertical-align: bottom; }
th, td { padding: 4px 8px; text-align: right; vertical-align: middle; border: none; }
th { font-weight: 600; }
tbody tr:nth-child(odd) { background: #f5f5f5; }
tbody tr:hover { background: rgba(66, 165, 245, .2); }
img, svg { max-width: 100%; height: auto; }
.error { color: #cf222e; white-space: pre-wrap; }
`,o=document.createElement("div");o.id="out";var c=-1;function r(){let t=document.body.getBoundingClientRect(),e=document.documentElement.scrollWidth>document.documentElement.clientWidth?16:0,n=Math.ceil(Math.max(t.bottom,o.getBoundingClientRect().bottom))+e;n!==c&&(c=n,window.parent.postMessage({type:"height",height:n},"*"))}function l(t){for(let e of Array.from(t.querySelectorAll("script"))){let n=document.createElement("script");for(let d of Array.from(e.attributes))n.setAttribute(d.name,d.value);n.textContent=e.textContent,e.replaceWith(n)}}function p(t){let e=document.createElement("pre");e.className="error",e.textContent=t,o.append(e)}var a=t=>Array.isArray(t)?t.join(""):String(t??""),m={"text/html"(t){let e=document.createElement("div");e.innerHTML=a(t),o.append(e),l(e)},"image/svg+xml"(t){let e=document.createElement("div");e.innerHTML=a(t),o.append(e)},"application/javascript"(t){let e=document.createElement("div");o.append(e);try{new Function("element",a(t))(e)}catch(n){p(`Javascript error adding output!
${n}`)}},"text/plain"(t){let e=document.createElement("pre");e.textContent=a(t),o.append(e)}},u=["text/html","image/svg+xml","application/javascript","text/plain"],b={render(t){let e=t.bundle&&typeof t.bundle=="object"?t.bundle:{};document.body.replaceChildren(o),o.replaceChildren();let n=u.find(d=>d in e);n&&m[n](e[n]),r()}};window.addEventListener("message",t=>{if(t.source!==window.parent||!t.data||typeof t.data!="object")return;let e=b[String(t.data.type)];e&&e(t.data)});function i(){let t=document.createElement("style");t.textContent=s,document.head.append(t),document.body.append(o),new ResizeObserver(r).observe(document.body),new MutationObserver(r).observe(document.body,{childList:!0,subtree:!0,attributes:!0,characterData:!0}),window.addEventListener("load",r),document.addEventListener("load",r,!0),window.parent.postMessage({type:"ready"},"*")}document.body?i():document.addEventListener("DOMContentLoaded",i);

/**
 * The model page's only style and script, inlined so the page works from file:// with no network:
 * no CDN, no fonts, no external URLs.
 */
export const PAGE_STYLE = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fafafa; --card: #fff; --muted: #6b6b70; --line: #dcdce0; --accent: #d0602a; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8ea; --bg: #17171a; --card: #202024; --muted: #9a9aa2; --line: #36363c; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header, main { max-width: 1100px; margin: 0 auto; padding: 16px 20px; }
header h1 { margin: 0 0 6px; font-size: 28px; word-break: break-word; }
.tags { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; padding: 0; list-style: none; }
.tags li { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 1px 10px; font-size: 13px; }
.stats { display: flex; gap: 18px; flex-wrap: wrap; color: var(--muted); margin: 8px 0 0; padding: 0; list-style: none; }
.stats b { color: var(--fg); }
section.version { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px; margin: 18px 0; }
section.version h2 { margin: 0 0 4px; }
h3 { margin: 18px 0 8px; font-size: 16px; }
.muted { color: var(--muted); }
table.files { border-collapse: collapse; width: 100%; }
table.files th, table.files td { text-align: left; padding: 6px 8px; border-top: 1px solid var(--line); vertical-align: top; }
dl.hashes { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0; font-size: 13px; }
dl.hashes dt { color: var(--muted); }
dl.hashes dd { margin: 0; display: flex; gap: 6px; align-items: center; }
code { font: 12.5px/1.4 ui-monospace, monospace; word-break: break-all; }
button { font: inherit; font-size: 12px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); border-radius: 6px; padding: 1px 8px; cursor: pointer; }
button.copied { border-color: var(--accent); color: var(--accent); }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.gallery button.thumb { padding: 0; border-radius: 8px; overflow: hidden; width: 160px; height: 160px; display: flex; align-items: center; justify-content: center; background: var(--bg); }
.gallery img { max-width: 160px; max-height: 160px; display: block; }
.no-preview { width: 160px; height: 160px; display: flex; align-items: center; justify-content: center; text-align: center; padding: 8px; color: var(--muted); font-size: 12px; }
dialog { max-width: min(900px, 95vw); border: 1px solid var(--line); border-radius: 10px; background: var(--card); color: var(--fg); }
dialog::backdrop { background: rgb(0 0 0 / 0.5); }
dialog .full { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
dialog .details { flex: 1 1 360px; min-width: 0; }
.gallery dialog img { max-width: 360px; max-height: 70vh; }
dialog .dialog-bar { display: flex; justify-content: flex-end; margin: 0 0 8px; }
dialog pre { white-space: pre-wrap; word-break: break-word; font: 12.5px/1.4 ui-monospace, monospace; background: var(--bg); padding: 8px; border-radius: 6px; max-height: 40vh; overflow: auto; }
dl.generation { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; font-size: 13px; }
dl.generation dd { margin: 0; word-break: break-word; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; border-left: 1px dashed var(--line); margin: 4px 0; }
ul.tree { border-left: none; padding-left: 0; }
.node { display: inline-block; font-size: 11px; text-transform: uppercase; letter-spacing: 0.04em; border-radius: 4px; padding: 0 5px; margin-right: 4px; background: var(--bg); border: 1px solid var(--line); }
.node.step { border-color: var(--accent); color: var(--accent); }
.charts { display: flex; flex-wrap: wrap; gap: 8px 24px; }
figure.chart { margin: 12px 0; overflow-x: auto; flex: 1 1 480px; max-width: 720px; }
figure.chart svg { width: 100%; height: auto; font: 10px system-ui, sans-serif; }
svg .grid { stroke: var(--line); }
svg .tick, svg .slot { fill: var(--muted); }
svg .bar { fill: var(--accent); opacity: 0.25; }
.legend-item { margin-right: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
.note { font-size: 13px; color: var(--muted); border-left: 3px solid var(--accent); padding-left: 10px; }
`;

/**
 * Copy buttons (`data-copy`): the Clipboard API where the page may use it, else the text is put in a
 * selected text area and copied with execCommand (pages opened from file:// in some browsers), and
 * left selected when even that is refused. Thumbnails (`data-dialog`) open their dialog.
 */
export const PAGE_SCRIPT = `
(() => {
  const flash = (button, label) => {
    const before = button.textContent;
    button.textContent = label;
    button.classList.add("copied");
    setTimeout(() => { button.textContent = before; button.classList.remove("copied"); }, 1200);
  };
  const fallbackCopy = (button, text) => {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    button.after(area);
    area.select();
    let copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    if (copied) { area.remove(); flash(button, "copied"); } else { flash(button, "select + Ctrl-C"); }
  };
  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const copy = target && target.closest("button[data-copy]");
    if (copy) {
      const text = copy.getAttribute("data-copy") || "";
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(() => flash(copy, "copied"), () => fallbackCopy(copy, text));
      } else {
        fallbackCopy(copy, text);
      }
      return;
    }
    const opener = target && target.closest("button[data-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.getAttribute("data-dialog") || "");
      if (dialog && typeof dialog.showModal === "function") dialog.showModal();
      return;
    }
    const closer = target && target.closest("button[data-close]");
    if (closer) closer.closest("dialog")?.close();
  });
})();
`;

// The kiosk: today's rows, newest first, live from the server's event stream; scrolls by itself when the list
// is longer than the screen; says so when its data is stale, and reloads itself when the day changes.
"use strict";

(function () {
  const state = JSON.parse(document.getElementById("kiosk-state").textContent);
  const rows = document.getElementById("rows");
  const empty = document.getElementById("empty");
  const known = new Set();
  const byKey = new Map();  // key -> row: what the summary and the pinned failures are counted from
  let handling = state.handling || {};
  let lastSeen = state.last_seen ? Date.parse(state.last_seen) : null;
  let lastSeenText = state.last_seen_text;
  let serverOffset = Date.parse(state.now) - Date.now(); // the display's own clock may be wrong
  if (Number.isNaN(serverOffset)) serverOffset = 0;
  let lastTick = Date.now();

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;  // device text is never markup
    if (className) td.className = className;
    return td;
  }

  // 检测 N 项 · 合格 M · 不合格 K (· 可疑 · 无效 when there are any), counted from the platform's verdicts.
  function summarize() {
    const counts = { pass: 0, fail: 0, suspect: 0, invalid: 0 };
    byKey.forEach((row) => { counts[row.verdict_code] = (counts[row.verdict_code] || 0) + 1; });
    const parts = [`检测 ${byKey.size} 项`, `合格 ${counts.pass}`, `不合格 ${counts.fail}`];
    if (counts.suspect) parts.push(`可疑待复检 ${counts.suspect}`);
    if (counts.invalid) parts.push(`无效 ${counts.invalid}`);
    document.getElementById("summary").textContent = parts.join(" · ");
    const failed = [...byKey.values()].filter((row) => row.verdict_code === "fail");
    const list = document.getElementById("failure-list");
    list.replaceChildren(...failed.map((row) => {
      const li = document.createElement("li");
      li.textContent = `${row.time} ${row.sample}（${row.item}，${row.value}）：${handling[row.key] || "待处理"}`;
      return li;
    }));
    document.getElementById("failures").hidden = failed.length === 0;
  }

  function add(row, fresh) {
    if (known.has(row.key)) return;
    known.add(row.key);
    byKey.set(row.key, row);
    const tr = document.createElement("tr");
    tr.className = row.verdict_code + (fresh ? " fresh" : "");
    tr.dataset.key = row.key;
    tr.append(
      cell(row.time), cell(row.sample), cell(`${row.supplier} ${row.batch}`.trim()), cell(row.item),
      cell(row.method), cell(row.value), cell(row.verdict, "verdict"), cell(row.tester),
    );
    if (row.note) {  // the device or typist said otherwise: the platform's verdict stands, and says so
      const note = document.createElement("div");
      note.className = "verdict-note";
      note.textContent = row.note;
      tr.children[6].append(note);
    }
    // newest first: the rows arrive in time order, and the page's first rows come newest first
    if (fresh) rows.prepend(tr); else rows.append(tr);
    empty.hidden = rows.children.length > 0;
    summarize();
  }

  JSON.parse(document.getElementById("kiosk-rows").textContent).forEach((row) => add(row, false));
  empty.hidden = rows.children.length > 0;
  summarize();

  function render() {
    const now = Date.now() + serverOffset;
    const updated = document.getElementById("updated");
    if (lastSeenText) updated.textContent = `最后更新 ${lastSeenText}`;
    const silentS = lastSeen ? (now - lastSeen) / 1000 : Infinity;  // NaN-safe: no time means stale
    const disconnected = Date.now() - lastTick > 30000;
    const stale = disconnected || !(silentS <= state.stale_after_s);
    document.body.classList.toggle("is-stale", stale);
    document.getElementById("stale").hidden = !stale;
    const minutes = disconnected ? Math.round((Date.now() - lastTick) / 60000) : Math.round(silentS / 60);
    document.getElementById("stale-minutes").textContent = Number.isFinite(minutes) ? String(Math.max(1, minutes)) : "—";
  }

  const source = new EventSource(state.events);
  source.addEventListener("test", (event) => { add(JSON.parse(event.data), true); });
  source.addEventListener("tick", (event) => {
    const tick = JSON.parse(event.data);
    if (tick.date !== state.date) { window.location.reload(); return; } // never yesterday's results as today's
    lastTick = Date.now();
    serverOffset = Date.parse(tick.now) - Date.now();
    if (tick.handling) { handling = tick.handling; summarize(); }
    if (tick.last_seen && Date.parse(tick.last_seen) >= (lastSeen || 0)) {
      lastSeen = Date.parse(tick.last_seen);
      lastSeenText = tick.last_seen_text;
    }
    render();
  });
  source.addEventListener("reload", () => window.location.reload());
  // The display's token was revoked: the reload shows no results any more.
  source.addEventListener("revoked", () => { source.close(); window.location.reload(); });
  setInterval(render, 1000);
  render();

  // Scroll a long list slowly, pause at the end, start again at the top.
  const scroller = document.getElementById("scroller");
  let pause = 0;
  setInterval(() => {
    if (scroller.scrollHeight <= scroller.clientHeight) return;
    if (pause > 0) { pause -= 1; return; }
    const before = scroller.scrollTop;
    scroller.scrollTop += 2;
    if (scroller.scrollTop === before) { pause = 60; setTimeout(() => { scroller.scrollTop = 0; }, 2500); }
  }, 50);
})();

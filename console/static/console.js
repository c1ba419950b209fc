// The console's progressive parts: charts (ECharts, served from this package) and the inbox's live list.
// Every page works without them.
"use strict";

function escapeText(value) {
  const div = document.createElement("div");
  div.textContent = String(value);
  return div.innerHTML;
}

function drawCharts() {
  if (typeof echarts === "undefined") return;
  document.querySelectorAll("[data-chart]").forEach((element) => {
    const source = document.getElementById(element.dataset.source);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const chart = echarts.init(element, null, { renderer: "svg" });
    // Device-supplied text never reaches a tooltip as HTML: every label is escaped first.
    const tooltip = {
      trigger: "axis",
      formatter: (items) => items.map((item) => `${escapeText(item.seriesName)}: ${escapeText(item.value[1] ?? item.value)}`).join("<br>"),
    };
    if (element.dataset.chart === "line") {
      const band = (element.dataset.band || "").split(",").map(Number);
      chart.setOption({
        animation: false,
        tooltip,
        legend: { type: "scroll", top: 0 },
        grid: { left: 48, right: 16, top: 36, bottom: 28 },
        xAxis: { type: "time" },
        yAxis: { type: "value", name: element.dataset.unit || "" },
        series: data.series.map((s, i) => ({
          name: s.name, type: "line", showSymbol: false, data: s.data,
          markArea: i === 0 && band.length === 2 ? { silent: true, itemStyle: { color: "rgba(30,132,73,0.08)" }, data: [[{ yAxis: band[0] }, { yAxis: band[1] }]] } : undefined,
        })),
      });
    } else {
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis", formatter: (items) => items.map((item) => `${escapeText(item.name)}: ${escapeText(item.value)}`).join("<br>") },
        grid: { left: 40, right: 16, top: 16, bottom: 48 },
        xAxis: { type: "category", data: data.labels, axisLabel: { interval: 0, rotate: 30 } },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: data.values, itemStyle: { color: "#c0392b" } }],
      });
    }
    window.addEventListener("resize", () => chart.resize());
  });
}

function liveInbox() {
  const inbox = document.getElementById("inbox");
  if (!inbox || typeof EventSource === "undefined") return;
  const url = new URL(window.location.href);
  url.searchParams.set("fragment", "1");
  let pending = null;
  const refresh = () => {
    pending = null;
    fetch(url, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const before = new Set([...inbox.querySelectorAll("[data-alert]")].map((row) => row.dataset.alert));
        inbox.innerHTML = html;
        inbox.querySelectorAll("[data-alert]").forEach((row) => {
          if (!before.has(row.dataset.alert)) row.classList.add("fresh");
        });
      })
      .catch(() => {});
  };
  const source = new EventSource(inbox.dataset.live);
  const live = document.getElementById("live");
  source.onopen = () => { if (live) live.hidden = false; };
  source.onerror = () => { if (live) live.hidden = true; };
  const later = () => { if (!pending) pending = setTimeout(refresh, 200); };  // a burst: one reload
  source.addEventListener("alert", later);
  source.addEventListener("reload", later);
  // The session ended (logged out elsewhere, a new password): the reload lands on the login page.
  source.addEventListener("logout", () => { source.close(); window.location.reload(); });
}

// A second click while the first submit is on its way would post the form again: the server would answer
// "duplicate", but the person would not see their first answer. One click, one submit.
function submitOnce() {
  document.querySelectorAll("form[method=post]").forEach((form) => {
    form.addEventListener("submit", () => {
      form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = true; });
    });
  });
}

// A "print" button (the visit sheet): the page's policy allows no inline script.
function printButtons() {
  document.querySelectorAll("button[data-print]").forEach((button) => {
    button.addEventListener("click", () => window.print());
  });
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  liveInbox();
  submitOnce();
  printButtons();
});

// Console behaviour: confirm before risky actions, charts (vendored ECharts), import progress. Pages work
// without it except the charts and the live progress bar.
(function () {
  "use strict";

  // Forms and buttons with data-confirm ask first (refunds, voids, reveals, rejects).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var question = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    // One submit per form: a double click must not send a refund twice (the server refuses repeats too).
    if (form.method.toLowerCase() === "post") {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    }
  });

  // ---- charts: a page carries its data as JSON in <script type="application/json" id="chart-data">
  // Integer minor units to text in the chart's currency (display only: the shop never computes in floats).
  function money(minor, spec) {
    var value = (minor / Math.pow(10, spec.exponent)).toFixed(spec.exponent);
    return (spec.symbol || "") + value.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function drawCharts() {
    var source = document.getElementById("chart-data");
    if (!source || !window.echarts) return;
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (node) {
      var spec = data[node.getAttribute("data-chart")];
      if (!spec) return;
      var chart = window.echarts.init(node, null, { renderer: "canvas" });
      var horizontal = spec.type === "hbar";
      var category = { type: "category", data: spec.labels, axisTick: { alignWithLabel: true },
                       axisLabel: { hideOverlap: true } };
      var format = function (v) { return spec.money ? money(v, spec) : v; };
      // Money axes step by whole units at least (no "¥0.01" ticks on an empty day).
      var value = { type: "value", minInterval: spec.money ? Math.pow(10, spec.exponent) : 1,
                    splitNumber: horizontal ? 3 : 5, axisLabel: { formatter: format, hideOverlap: true } };
      chart.setOption({
        animation: false,
        color: ["#2f5bea", "#12805c", "#e0482b"],
        grid: { left: horizontal ? 8 : 12, right: 30, top: 28, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis", valueFormatter: format },
        legend: spec.series.length > 1 ? { top: 0 } : undefined,
        xAxis: horizontal ? value : category,
        yAxis: horizontal ? Object.assign({}, category, { inverse: true }) : value,
        series: spec.series.map(function (s) {
          return { name: s.name, type: horizontal ? "bar" : spec.type, data: s.data, smooth: false,
                   barMaxWidth: 28, areaStyle: spec.type === "line" ? { opacity: 0.08 } : undefined,
                   yAxisIndex: 0 };
        })
      });
      node.setAttribute("data-drawn", "true");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  // ---- a card-key import running in the background: poll its progress until it is done
  function watchImport() {
    var box = document.querySelector("[data-import-progress]");
    if (!box) return;
    var url = box.getAttribute("data-import-progress");
    var bar = box.querySelector(".c-progress > span");
    var label = box.querySelector("[data-progress-label]");
    function tick() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (p) {
          var percent = p.total ? Math.floor(100 * p.done / p.total) : (p.finished ? 100 : 0);
          if (p.finished) percent = 100;
          bar.style.width = percent + "%";
          label.textContent = percent + " %";
          box.setAttribute("data-percent", String(percent));
          if (p.finished) { window.location.reload(); return; }
          window.setTimeout(tick, 700);
        })
        .catch(function () { window.setTimeout(tick, 2000); });
    }
    tick();
  }

  // ---- the redemption guide's live preview: the shop renders it (the same sanitizer buyers get), as one types
  function previewGuide() {
    var source = document.querySelector("[data-guide-source]");
    var target = document.querySelector("[data-guide-preview]");
    if (!source || !target) return;
    var form = source.form;
    var timer = null;
    var sent = 0;
    function refresh() {
      var body = new FormData();
      var token = form && form.querySelector("input[name=csrf_token]");
      body.append("csrf_token", token ? token.value : "");
      body.append("redemption_guide", source.value);
      var mine = ++sent;
      fetch(source.getAttribute("data-guide-source"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          if (mine !== sent) return;  // an older answer arriving late must not replace a newer one
          if (source.value.trim()) { target.innerHTML = html; } else {
            target.textContent = ""; var p = document.createElement("p"); p.className = "muted";
            p.textContent = target.getAttribute("data-empty"); target.appendChild(p);
          }
          target.setAttribute("data-rendered", String(mine));
        })
        .catch(function () { /* the preview is a convenience: saving still works */ });
    }
    source.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(); watchImport(); previewGuide(); });
})();

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

  // ---- card-key imports: the upload (with its own progress), then the import job's progress until it is done
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) { return String(values[name]); });
  }

  function showProgress(box, percent, counts) {
    var bar = box.querySelector(".c-progress > span");
    var label = box.querySelector("[data-progress-label]");
    var meter = box.querySelector(".c-progress");
    bar.style.width = percent + "%";
    label.textContent = percent + " %";
    if (meter) meter.setAttribute("aria-valuenow", String(percent));
    box.setAttribute("data-percent", String(percent));
    var line = box.querySelector("[data-progress-counts]");
    if (line && counts) {
      line.textContent = fill(line.getAttribute("data-template"), {
        lines: counts.lines_read, added: counts.added, duplicates: counts.duplicates, invalid: counts.invalid });
    }
  }

  // Polls the job's progress; when it is finished, opens the job's page (its report).
  function watchImport(box, url, page) {
    function tick() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (p) {
          showProgress(box, p.status === "done" ? 100 : p.percent, p);
          box.setAttribute("data-status", p.status);
          if (p.finished) { window.setTimeout(function () { window.location.assign(page); }, 400); return; }
          window.setTimeout(tick, 500);
        })
        .catch(function () { window.setTimeout(tick, 2000); });
    }
    tick();
  }

  function uploadImport() {
    var form = document.querySelector("form[data-import-upload]");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    var box = form.querySelector("[data-import-live]");
    var phase = box.querySelector("[data-import-phase]");
    var error = box.querySelector("[data-import-error]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      var token = form.querySelector("input[name=csrf_token]");
      box.hidden = false;
      box.querySelectorAll("[data-live-progress]").forEach(function (n) { n.hidden = false; });
      error.textContent = "";
      phase.textContent = phase.getAttribute("data-uploading");
      showProgress(box, 0, null);
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", token ? token.value : "");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) showProgress(box, Math.floor(99 * e.loaded / e.total), null);
      };
      function failed(message) {  // nothing was queued: no bar, the reason
        box.querySelectorAll("[data-live-progress]").forEach(function (n) { n.hidden = true; });
        error.textContent = message;
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
      }
      xhr.onload = function () {
        var answer = {};
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {}; }
        if (xhr.status !== 202) { failed(answer.error || answer.detail || ("HTTP " + xhr.status)); return; }
        phase.textContent = phase.getAttribute("data-importing");
        showProgress(box, 0, null);
        watchImport(box, answer.progress, answer.page);
      };
      xhr.onerror = function () { failed("network error"); };
      xhr.send(new FormData(form));
    });
  }

  // The job's own page: its bar drawn from the page (the console's CSP allows no inline style), polled while it runs.
  function followImport() {
    var shown = document.querySelector("[data-testid=import-progress][data-percent]");
    if (shown) {  // drawn at once, not animated from 0
      var bar = shown.querySelector(".c-progress > span");
      bar.style.transition = "none";
      showProgress(shown, parseInt(shown.getAttribute("data-percent"), 10) || 0, null);
      void bar.offsetWidth;
      bar.style.transition = "";
    }
    var box = document.querySelector("[data-import-progress]");
    if (box) watchImport(box, box.getAttribute("data-import-progress"), window.location.pathname);
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

  // ---- a new coupon's form: only the fields of the kind chosen (without script every kind's fields show)
  function couponKindFields() {
    var select = document.querySelector("select[name=kind]");
    var blocks = document.querySelectorAll("[data-kind-fields]");
    if (!select || !blocks.length) return;
    function show() {
      blocks.forEach(function (b) { b.hidden = b.getAttribute("data-kind-fields") !== select.value; });
    }
    select.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(); uploadImport(); followImport(); previewGuide(); couponKindFields();
  });
})();

// dagprof report: small offline enhancements. The charts are already SVG; this adds a hover
// read-out to the memory chart and click-to-sort on tables. No network, no libraries.
(function () {
  "use strict";
  var data = {};
  try { data = JSON.parse(document.getElementById("dagprof-data").textContent || "{}"); } catch (e) { data = {}; }

  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
  }

  function memoryHover() {
    var svg = document.getElementById("chart-memory");
    var samples = data.samples || [];
    if (!svg || !samples.length || !svg.dataset.xmax) return;
    var SVGNS = svg.namespaceURI;  // the SVG namespace, without spelling a URL in this file
    var left = +svg.dataset.left, top = +svg.dataset.top, pw = +svg.dataset.pw, ph = +svg.dataset.ph;
    var xmax = +svg.dataset.xmax;
    var layer = document.createElementNS(SVGNS, "g");
    layer.setAttribute("class", "hover-layer");
    layer.setAttribute("id", "chart-memory-hover");
    var line = document.createElementNS(SVGNS, "line");
    line.setAttribute("y1", top); line.setAttribute("y2", top + ph);
    line.setAttribute("stroke", "#333"); line.setAttribute("stroke-width", "1");
    line.setAttribute("visibility", "hidden");
    var hit = document.createElementNS(SVGNS, "rect");
    hit.setAttribute("x", left); hit.setAttribute("y", top); hit.setAttribute("width", pw);
    hit.setAttribute("height", ph); hit.setAttribute("fill", "transparent");
    layer.appendChild(line); layer.appendChild(hit); svg.appendChild(layer);
    var readout = document.getElementById("memory-readout");
    var names = data.series || ["RSS", "RSS anon", "RSS file"];
    hit.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect();
      var scale = box.width / svg.viewBox.baseVal.width;
      var x = (ev.clientX - box.left) / scale;
      var t = (x - left) / pw * xmax, best = samples[0];
      for (var i = 1; i < samples.length; i++) {
        if (Math.abs(samples[i][0] - t) < Math.abs(best[0] - t)) best = samples[i];
      }
      var bx = left + pw * best[0] / xmax;
      line.setAttribute("x1", bx); line.setAttribute("x2", bx); line.setAttribute("visibility", "visible");
      var parts = [best[0].toFixed(2) + " s"];
      for (var j = 0; j < names.length; j++) {
        if (typeof best[j + 1] === "number") parts.push(names[j] + " " + fmtBytes(best[j + 1]));
      }
      readout.textContent = parts.join("  ·  ");
      readout.style.display = "block";
      readout.style.left = Math.min(bx * scale + 10, box.width - 260) + "px";
      readout.style.top = (top * scale + 4) + "px";
    });
    hit.addEventListener("mouseleave", function () {
      line.setAttribute("visibility", "hidden"); readout.style.display = "none";
    });
  }

  function cellValue(td) {
    if (!td) return "";
    var v = td.getAttribute("data-v");
    if (v !== null && v !== "") return +v;
    var text = td.textContent.trim(), num = +text.replace(/,/g, "");
    return isNaN(num) || text === "" ? text.toLowerCase() : num;
  }

  function sortable() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = table.querySelectorAll("thead th");
      Array.prototype.forEach.call(heads, function (th, col) {
        th.addEventListener("click", function () {
          var desc = th.getAttribute("data-sort") !== "▼";
          Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-sort"); });
          th.setAttribute("data-sort", desc ? "▼" : "▲");
          var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
            var r = x < y ? -1 : x > y ? 1 : 0;
            return desc ? -r : r;
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
  }

  memoryHover();
  sortable();
  document.documentElement.setAttribute("data-js", "ready");
})();

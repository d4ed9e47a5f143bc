// The threshold slider: recomputes precision, recall, F1 and the confusion matrix from the
// embedded per-row scores with the rule of ftlens.core.threshold (positive when score >= t).
(function () {
  "use strict";
  var holder = document.getElementById("ftlens-slider-data");
  if (!holder) { return; }
  var d = JSON.parse(holder.textContent);
  var scores = d.scores, flags = d.is_positive;
  var P = 0, i;
  for (i = 0; i < flags.length; i++) { P += flags[i]; }
  var N = flags.length - P;
  // candidate thresholds: the distinct scores, ascending (the slider's positions)
  var cands = Array.from(new Set(scores)).sort(function (a, b) { return a - b; });
  var slider = document.getElementById("thr-slider");
  var input = document.getElementById("thr-input");
  if (!cands.length || !slider || !input) { return; }
  slider.min = "0";
  slider.max = String(cands.length - 1);
  slider.step = "1";

  function byId(id) { return document.getElementById(id); }
  function pct(v) { return (100 * v).toFixed(1) + "%"; }
  function setNum(id, value, text) {
    var el = byId(id);
    if (el) { el.textContent = text; el.setAttribute("data-value", String(value)); }
  }
  // the position of the smallest candidate >= t (the same predictions as t itself)
  function indexFor(t) {
    var lo = 0, hi = cands.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (cands[mid] >= t) { hi = mid; } else { lo = mid + 1; }
    }
    return Math.min(lo, cands.length - 1);
  }
  function counts(t) {
    var tp = 0, fp = 0;
    for (var k = 0; k < scores.length; k++) {
      if (scores[k] >= t) { if (flags[k] === 1) { tp++; } else { fp++; } }
    }
    var fn = P - tp, tn = N - fp;
    var den = 2 * tp + fn + fp;
    return { tp: tp, fp: fp, fn: fn, tn: tn,
             precision: tp / Math.max(1, tp + fp), recall: tp / Math.max(1, P),
             f1: den > 0 ? 2 * tp / den : 0 };
  }
  function cell(id, n, total) {
    var rate = total ? n / total : 0;
    setNum("thr-" + id, n, String(n));
    setNum("thr-" + id + "-rate", rate, pct(rate));
    var td = byId("thr-cell-" + id);
    if (td) { td.style.backgroundColor = "rgba(21, 94, 239, " + (0.06 + 0.8 * rate).toFixed(3) + ")"; }
  }
  function show(t) {
    var c = counts(t);
    setNum("thr-value", t, String(Number(t.toPrecision(6))));
    setNum("thr-precision", c.precision, pct(c.precision));
    setNum("thr-recall", c.recall, pct(c.recall));
    setNum("thr-f1", c.f1, pct(c.f1));
    setNum("thr-flagged", c.tp + c.fp, String(c.tp + c.fp));
    cell("tp", c.tp, P); cell("fn", c.fn, P); cell("fp", c.fp, N); cell("tn", c.tn, N);
    var dot = byId("pr-current");
    if (dot && d.plot) {
      dot.setAttribute("cx", (d.plot.x0 + c.recall * (d.plot.x1 - d.plot.x0)).toFixed(1));
      dot.setAttribute("cy", (d.plot.y0 + c.precision * (d.plot.y1 - d.plot.y0)).toFixed(1));
    }
  }
  slider.addEventListener("input", function () {
    var t = cands[Number(slider.value)];
    input.value = String(t);
    show(t);
  });
  input.addEventListener("change", function () {
    var t = parseFloat(input.value);
    if (!isFinite(t)) { return; }
    slider.value = String(indexFor(t));
    show(t);
  });
  var reset = byId("thr-reset");
  function start() {
    slider.value = String(indexFor(d.start));
    input.value = String(d.start);
    show(d.start);
  }
  if (reset) { reset.addEventListener("click", start); }
  start();
})();

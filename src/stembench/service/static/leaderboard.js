// Sort a leaderboard table by the clicked column: numbers by their data-sort value, text
// alphabetically. The first click sorts best first (descending for numbers unless the header
// says data-ascending, e.g. RMS), a second click reverses.
"use strict";
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.querySelectorAll("thead th[data-type]");
  headers.forEach(function (header) {
    header.addEventListener("click", function () {
      var index = Array.prototype.indexOf.call(header.parentNode.children, header);
      var numeric = header.dataset.type === "number";
      var firstDescending = numeric && !header.dataset.ascending;
      var descending = header.classList.contains("sorted") ?
        !header.classList.contains("descending") : firstDescending;
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[index].dataset.sort, y = b.cells[index].dataset.sort;
        var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      headers.forEach(function (other) { other.classList.remove("sorted", "descending"); });
      header.classList.add("sorted");
      if (descending) { header.classList.add("descending"); }
    });
  });
});

// Model cards open in a dialog.
document.querySelectorAll("button.open-card").forEach(function (button) {
  button.addEventListener("click", function () {
    document.getElementById(button.dataset.dialog).showModal();
  });
});

// The radar of a group overlays the ticked models (all of them by default).
document.querySelectorAll("section.group").forEach(function (section) {
  var image = section.querySelector("img.radar");
  if (!image) { return; }
  section.querySelectorAll("input.radar-pick").forEach(function (box) {
    box.addEventListener("change", function () {
      var chosen = Array.prototype.filter.call(section.querySelectorAll("input.radar-pick"),
        function (b) { return b.checked && b.closest("tr").style.display !== "none"; })
        .map(function (b) { return b.value; });
      var base = "/api/leaderboard/" + encodeURIComponent(image.dataset.group) + "/radar.png";
      image.style.visibility = chosen.length ? "visible" : "hidden";
      if (chosen.length) { image.src = base + "?jobs=" + chosen.sort().join(","); }
    });
  });
});

// Only models trained apart from the benchmark (model card says no overlap).
var independent = document.getElementById("independent-only");
if (independent) {
  independent.addEventListener("change", function () {
    document.querySelectorAll("table.sortable tbody tr").forEach(function (row) {
      row.style.display = independent.checked && row.dataset.overlap !== "no" ? "none" : "";
    });
  });
}

// The invoice form: add and remove item rows, and the running subtotal, discount, total and
// payable-now as the amounts are typed. Without this script the "Add an item" and "Remove"
// buttons go to the server, which answers with the changed form, and totals are worked out on
// saving; the server validates whatever rows arrive either way.
(function () {
  var form = document.getElementById("invoice-form");
  if (!form) { return; }
  var rows = document.getElementById("item-rows");
  var template = document.getElementById("item-row-template");
  var total = form.querySelector("input[name=items-TOTAL_FORMS]");
  var initial = form.querySelector("input[name=items-INITIAL_FORMS]");
  var maxRows = parseInt(form.querySelector("input[name=items-MAX_NUM_FORMS]").value, 10);
  var addButton = document.getElementById("add-item");
  var locales = {};
  form.dataset.moneyLocales.split(",").forEach(function (pair) {
    var parts = pair.split("=");
    locales[parts[0]] = parts[1];
  });

  // The same rules as core.money.parse_money with grouped=True: plain digits with up to two
  // decimals, commas only between groups of three (or the Indian 1,00,000).
  var PLAIN = /^[0-9]+(\.[0-9]{1,2})?$/;
  var GROUPED = /^(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,2}(?:,[0-9]{2})+,[0-9]{3})(\.[0-9]{1,2})?$/;
  function parse(text) {
    text = text.replace(/^ +| +$/g, "");
    if (text === "") { return null; }
    if (!PLAIN.test(text) && !GROUPED.test(text)) { return NaN; }
    // In cents, as an integer: no binary fractions in a sum of money.
    var parts = text.replace(/,/g, "").split(".");
    return parseInt(parts[0], 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
  }
  function show(cents) {
    var currency = form.querySelector("[name=currency]").value;
    return new Intl.NumberFormat(locales[currency] || "en-IN", {
      style: "currency", currency: currency,
    }).format(cents / 100);
  }

  var totals = document.getElementById("form-totals");
  var problem = document.getElementById("totals-problem");
  function cell(name) { return totals.querySelector("[data-total=" + name + "]"); }
  function recalc() {
    var subtotal = 0, bad = [];
    rows.querySelectorAll(".item-row").forEach(function (row, i) {
      var cents = parse(row.querySelector("input[name$=-amount]").value);
      if (cents === null) { return; }
      if (isNaN(cents)) { bad.push("item " + (i + 1)); } else { subtotal += cents; }
    });
    var discount = parse(form.querySelector("[name=discount]").value);
    var payable = parse(form.querySelector("[name=payable_now]").value);
    if (isNaN(discount)) { bad.push("the discount"); discount = 0; }
    if (isNaN(payable)) { bad.push("payable now"); payable = null; }
    discount = discount || 0;
    var sum = subtotal - discount;
    cell("subtotal").textContent = show(subtotal);
    cell("discount").textContent = discount ? "\u2212" + show(discount) : show(0);
    cell("total").textContent = show(sum);
    cell("payable").textContent = show(payable === null ? Math.max(sum, 0) : payable);
    var messages = [];
    if (bad.length) { messages.push("Check the amount of " + bad.join(", ") + " (such as 2,000 or 2000.50)."); }
    if (subtotal && sum <= 0) { messages.push("The discount must be smaller than the sum of the items."); }
    if (payable !== null && sum > 0 && payable > sum) { messages.push("Payable now is more than the total."); }
    problem.textContent = messages.join(" ");
    problem.hidden = messages.length === 0;
  }

  function renumber() {
    var all = rows.querySelectorAll(".item-row");
    all.forEach(function (row, i) {
      row.dataset.index = String(i);
      row.querySelector(".item-number").textContent = String(i + 1);
      row.querySelectorAll("[name],[id],[for],[aria-describedby]").forEach(function (el) {
        ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(/items-(\d+|__prefix__)-/g, "items-" + i + "-")); }
        });
      });
      var remove = row.querySelector("button[name=remove_row]");
      remove.value = String(i);
      remove.setAttribute("aria-label", "Remove item " + (i + 1));
      remove.disabled = all.length === 1;
    });
    total.value = String(all.length);
    addButton.disabled = all.length >= maxRows;
  }

  addButton.addEventListener("click", function (event) {
    event.preventDefault();
    var fragment = template.content.cloneNode(true);
    var row = fragment.querySelector(".item-row");
    // A new row starts from the one above it (same level, month and batch are the rule).
    var last = rows.querySelector(".item-row:last-of-type");
    if (last) {
      ["level", "month", "batch"].forEach(function (name) {
        var from = last.querySelector("[name$=-" + name + "]");
        var to = row.querySelector("[name$=-" + name + "]");
        if (from && to) { to.value = from.value; }
      });
    }
    rows.appendChild(fragment);
    renumber();
    var added = rows.querySelector(".item-row:last-of-type");
    added.querySelector("input[name$=-amount]").focus();
    recalc();
  });

  rows.addEventListener("click", function (event) {
    var button = event.target.closest("button[name=remove_row]");
    if (!button) { return; }
    event.preventDefault();
    var row = button.closest(".item-row");
    var index = parseInt(row.dataset.index, 10);
    if (index < parseInt(initial.value, 10)) { initial.value = String(parseInt(initial.value, 10) - 1); }
    var next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    renumber();
    if (next) { next.querySelector("input").focus(); }
    recalc();
  });

  form.addEventListener("input", recalc);
  form.addEventListener("change", recalc);
  totals.hidden = false;
  renumber();
  recalc();
})();

// Behaviour for the staff forms, kept out of the HTML because the Content-Security-Policy allows
// no inline scripts.
document.querySelectorAll("form[data-single-submit]").forEach(function (form) {
  // A convenience only: the idempotency key the form carries is what makes a second submit
  // harmless (the server replays the first answer).
  form.addEventListener("submit", function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  });
});
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });
});
document.querySelectorAll("fieldset.password-choice").forEach(function (set) {
  // The password boxes matter only when the founder sets the password; without this script
  // they are simply always shown.
  var chosen = set.querySelector(".chosen-password");
  function update() {
    var choose = set.querySelector("input[value=choose]");
    chosen.hidden = !(choose && choose.checked);
  }
  set.addEventListener("change", update);
  update();
});

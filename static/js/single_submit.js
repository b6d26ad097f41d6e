// A convenience only: the idempotency key carried by the form is what makes a double submit
// harmless (the server replays the first answer).
document.querySelectorAll("form[data-single-submit]").forEach(function (form) {
  form.addEventListener("submit", function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  });
});

// Storefront behaviour: copy buttons, live order total, quantity limits. Pages work without it.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy") ? resolve() : reject(new Error("copy failed")); }
      catch (err) { reject(err); }
      finally { document.body.removeChild(area); }
    });
  }

  function flash(button) {
    var original = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", original);
    button.textContent = button.getAttribute("data-copied") || "OK";
    button.classList.add("copied");
    setTimeout(function () { button.textContent = original; button.classList.remove("copied"); }, 1600);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-all]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    if (text === null) {
      var parts = [];
      document.querySelectorAll(button.getAttribute("data-copy-all")).forEach(function (node) {
        parts.push(node.textContent.trim());
      });
      text = parts.join("\n");
    }
    copyText(text).then(function () { flash(button); }, function () { window.prompt("", text); });
  });

  // CSRF (web/csrf.py): forms carry csrf_token themselves; scripted requests send the page's token as a header.
  var csrfMeta = document.querySelector("meta[name=csrf-token]");
  window.quanyiCsrfToken = function () { return csrfMeta ? csrfMeta.getAttribute("content") : ""; };
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = window.quanyiCsrfToken();
  });

  // Order links (web/order_link.py): the token comes in the fragment, which no server ever sees; post it.
  var linkForm = document.querySelector("form[data-order-link]");
  if (linkForm) {
    var fromFragment = /^#t=([A-Za-z0-9._-]{1,96})$/.exec(window.location.hash);
    if (fromFragment) {
      linkForm.elements.t.value = fromFragment[1];
      history.replaceState(null, "", window.location.pathname);
    }
    if (linkForm.elements.t.value) linkForm.submit();
  }

  var form = document.querySelector("[data-testid=checkout-form]");
  if (!form) return;
  var quantity = form.querySelector("#quantity");
  var total = document.getElementById("total");
  var hint = document.getElementById("quantity-hint");
  var symbols = { CNY: "¥", USD: "$", HKD: "HK$", EUR: "€", JPY: "JP¥" };
  var decimals = { JPY: 0 };

  function money(cents, currency) {
    var exp = currency in decimals ? decimals[currency] : 2;
    var value = (cents / Math.pow(10, exp)).toFixed(exp).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (symbols[currency] || currency + " ") + value;
  }

  function update() {
    var chosen = form.querySelector("input[name=sku_id]:checked");
    if (!chosen) { total.textContent = "—"; return; }
    var min = parseInt(chosen.getAttribute("data-min"), 10), max = parseInt(chosen.getAttribute("data-max"), 10);
    quantity.min = min; quantity.max = max;
    var template = hint.getAttribute("data-template") || "{min}–{max}";
    hint.textContent = template.replace("{min}", min).replace("{max}", max);
    var qty = parseInt(quantity.value, 10);
    if (!(qty >= 1)) { total.textContent = "—"; return; }
    // 自选卡密: a picked key costs its surcharge more, and is bought alone.
    var pick = form.querySelector("input[name=card_key_id]:checked");
    var surcharge = 0;
    if (pick && pick.value && pick.getAttribute("data-sku") === chosen.value) {
      surcharge = parseInt(pick.getAttribute("data-surcharge"), 10) || 0;
      quantity.value = 1; qty = 1; quantity.max = 1;
    }
    // Integer cents times an integer quantity: exact, no float rounding of money.
    total.textContent = money((parseInt(chosen.getAttribute("data-price"), 10) + surcharge) * qty,
                              chosen.getAttribute("data-currency"));
  }

  // Picking a key chooses its SKU too; choosing another SKU drops a pick of this one.
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "card_key_id" && target.value) {
      var sku = form.querySelector("input[name=sku_id][value='" + target.getAttribute("data-sku") + "']");
      if (sku && !sku.disabled) sku.checked = true;
    } else if (target.name === "sku_id") {
      var random = form.querySelector("input[name=card_key_id][value='']");
      var picked = form.querySelector("input[name=card_key_id]:checked");
      if (picked && picked.value && picked.getAttribute("data-sku") !== target.value && random) random.checked = true;
    }
  });

  // The − / + buttons next to the quantity (hidden without script): stay within the chosen SKU's limits.
  form.querySelectorAll("[data-step]").forEach(function (button) {
    button.addEventListener("click", function () {
      var chosen = form.querySelector("input[name=sku_id]:checked");
      var min = chosen ? parseInt(chosen.getAttribute("data-min"), 10) : 1;
      var max = chosen ? parseInt(chosen.getAttribute("data-max"), 10) : Infinity;
      var next = (parseInt(quantity.value, 10) || min) + parseInt(button.getAttribute("data-step"), 10);
      quantity.value = Math.min(Math.max(next, min), max);
      changed();
    });
  });

  // A price preview from the server (coupon applied) stays until the buyer changes the order; then it is stale:
  // hidden, and the list total shown again (the server prices the order anyway when it is placed).
  var breakdown = form.querySelector("[data-testid=price-breakdown]");
  function changed() {
    if (breakdown) { breakdown.hidden = true; breakdown = null; }
    update();
  }
  form.addEventListener("change", function (event) {
    if (event.target && event.target.id === "coupon_code") return;  // a typed code waits for Apply or Buy
    changed();
  });
  quantity.addEventListener("input", changed);
  if (!breakdown) update();
})();

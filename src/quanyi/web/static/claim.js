// Claim page: a claim link carries the code in its fragment (#code=...), which browsers never send to a server;
// fill it into the form and drop it from the address bar.
(function () {
  "use strict";
  var match = /(?:^#|&)code=([A-Za-z0-9-]{8,40})/.exec(window.location.hash || "");
  var input = document.getElementById("code");
  if (match && input) {
    input.value = match[1];
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}());

// Starts ReDoc (api/docs.py) with the nonce of this script element, so that the styles ReDoc writes
// into the page are allowed by the page's Content-Security-Policy, which allows no other inline style.
(function () {
  "use strict";
  var element = document.getElementById("redoc");
  Redoc.init(element.dataset.specUrl, { nonce: document.currentScript.nonce }, element);
})();

// Copy buttons: <button type="button" data-copy-target="element-id" hidden>Copy</button> copies that element's text.
// The buttons stay hidden without JavaScript (the text can still be selected by hand) and are revealed in content
// htmx swaps in. No inline script or style: the page's CSP stays strict.
(function () {
  "use strict";

  function reveal(root) {
    if (root.matches && root.matches("[data-copy-target][hidden]")) {
      root.hidden = false;
    }
    root.querySelectorAll("[data-copy-target][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function selectText(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copyText(source) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(source.textContent);
    }
    selectText(source);
    return Promise.reject(new Error("no clipboard"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) {
      return;
    }
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) {
      return;
    }
    var label = button.dataset.copyLabel || button.textContent;
    button.dataset.copyLabel = label;
    copyText(source).then(function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 2000);
    }, function () {
      selectText(source);
      button.textContent = "Selected: press Ctrl+C";
    });
  });

  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:load", function (event) { reveal(event.target); });
})();

// hookgate console: copy buttons and live refresh. Every page works without this file; it only
// adds a Copy button beside values worth pasting elsewhere, and re-fetches the parts of a page
// marked data-live-src when the page's live stream (body data-live) says they changed.
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  function copied(button) {
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = 'Copy'; }, 1500);
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-copy]');
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source) { return; }
    var text = source.textContent;
    var fallback = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand('copy'); copied(button); } catch (e) { /* selected: copy by hand */ }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, fallback);
    } else {
      fallback();
    }
  });

  var live = document.body.getAttribute('data-live');
  if (!live || !window.EventSource || !window.fetch) { return; }
  var busy = false;
  var again = false;

  // Re-fetches every live part of the page; a change announced while fetching fetches again.
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var parts = document.querySelectorAll('[data-live-src]');
    var fetches = Array.prototype.map.call(parts, function (part) {
      return fetch(part.getAttribute('data-live-src'), {
        credentials: 'same-origin',
        headers: { 'Accept': 'text/html' }
      }).then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      }).then(function (fragment) {
        // The fragment is the server's own HTML, every value in it escaped.
        part.innerHTML = fragment;
      });
    });
    Promise.all(fetches).catch(function () { /* the next change tries again */ }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  var stream = new EventSource(live);
  // What changed between the page's rendering and the stream's start is fetched at once.
  stream.addEventListener('open', function () {
    document.body.classList.add('live-on');
    refresh();
  });
  stream.addEventListener('error', function () { document.body.classList.remove('live-on'); });
  stream.addEventListener('changed', refresh);
})();

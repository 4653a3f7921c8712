/*
 * harness.js: the in-page half of run_all.py.
 *
 * It runs in a page that already has comet.js: injected with WebDriver's execute_script into the gateway's own demo
 * page (same origin), or loaded by the page server's test.html (cross origin). It subscribes through
 * Comet.subscribe and records, in one ordered log, everything run_all.py later checks:
 *
 *   {kind: 'message', sub, id, channel, event, data, frame}   one per onMessage; `frame` is the readyState of the
 *                                                             subscription's newest forever frame at that moment
 *                                                             ('loading' while its response is still open), or
 *                                                             'cross-origin' when the page may not read it
 *   {kind: 'status', sub, status, detail}                    one per onStatus
 *   {kind: 'gap', sub, channels}                             one per onGap
 *   {kind: 'frame', sub, frame, src}                         comet.js inserted a forever iframe
 *   {kind: 'frame-load', sub, frame}                         that iframe's document finished (its response ended)
 *   {kind: 'mark', what}                                     a point in time run_all.py asked to record
 *   {kind: 'page-error', message}                            an uncaught exception in the page
 *
 * Every entry has `seq` (its position in the log) and `t` (Date.now()). run_all.py reads the log with
 * __cometTest.state(); nothing here decides pass or fail.
 */
(function () {
  'use strict';
  if (window.__cometTest) return; // installed once per page

  var log = [];
  var seq = 0;
  var subs = []; // {handle, channel, frames: [iframe elements comet.js made for it]}

  function record(kind, fields) {
    fields = fields || {};
    fields.kind = kind;
    fields.seq = ++seq;
    fields.t = Date.now();
    log.push(fields);
    return fields;
  }

  // comet.js builds a forever frame as <iframe src="{url}/sub/{channel}?transport=iframe&...">. Watch the document
  // for them, so that the frame's load event (its response ended) is on record whatever comet.js does with it.
  function watchFrame(node) {
    if (node.nodeName !== 'IFRAME') return;
    subs.forEach(function (sub, index) {
      if (sub.frames.indexOf(node) >= 0 || node.src.indexOf('/sub/' + sub.channel + '?') < 0) return;
      var frame = sub.frames.push(node) - 1;
      record('frame', { sub: index, frame: frame, src: node.src });
      node.addEventListener('load', function () { record('frame-load', { sub: index, frame: frame }); });
    });
  }
  // Mutation records are delivered in a microtask right after comet.js's appendChild, before any byte of the
  // frame's response can arrive, so no load event is missed.
  new MutationObserver(function (mutations) {
    mutations.forEach(function (m) { Array.prototype.forEach.call(m.addedNodes, watchFrame); });
  }).observe(document.documentElement, { childList: true, subtree: true });

  // The readyState of a subscription's newest frame. A same-origin frame's scripts call into this page
  // synchronously, so inside onMessage this is the state of the document whose script is running.
  function frameState(sub) {
    var frame = sub.frames[sub.frames.length - 1];
    if (!frame) return null;
    try {
      return frame.contentDocument ? frame.contentDocument.readyState : 'cross-origin';
    } catch (e) {
      return 'cross-origin';
    }
  }

  window.addEventListener('error', function (e) { record('page-error', { message: String(e.message) }); });

  // Subscribes to one channel; transports: a list, or null for comet.js's default order; extra: more options
  // for Comet.subscribe (e.g. stallTimeout), or null. Returns the subscription's index (the `sub` of its entries).
  function start(channel, url, transports, extra) {
    var index = subs.length;
    var sub = { handle: null, channel: channel, frames: [] };
    subs.push(sub);
    var options = {
      url: url,
      onMessage: function (m) {
        record('message', {
          sub: index, id: m.id, channel: m.channel, event: m.event === undefined ? null : m.event,
          data: m.data, frame: frameState(sub)
        });
      },
      onStatus: function (status, detail) {
        record('status', { sub: index, status: status, detail: detail === undefined ? null : detail });
        // Also in the browser console, which run_all.py prints when a check fails.
        console.log('comet[' + index + '] ' + status + (detail == null ? '' : ' ' + JSON.stringify(detail)));
      },
      onGap: function (channels) { record('gap', { sub: index, channels: channels }); }
    };
    if (transports) options.transports = transports;
    for (var key in extra || {}) options[key] = extra[key];
    sub.handle = Comet.subscribe(channel, options);
    return index;
  }

  window.__cometTest = {
    start: start,
    stop: function (index) { subs[index].handle.close(); },
    mark: function (what) { record('mark', { what: what }); },
    // Everything recorded from log position `from` on, and each subscription's transport now.
    state: function (from) {
      return {
        log: log.slice(from || 0),
        transports: subs.map(function (s) { return s.handle && s.handle.transport; }),
        // Set only if a payload's markup ever ran as script in this page (see run_all.py's BURST).
        injected: window.__injected || null
      };
    }
  };
})();

/*
 * comet.js: the browser client of comet-gateway (served by the gateway at GET /comet.js).
 *
 *   var sub = Comet.subscribe('news', {            // a channel, 'a,b', or ['a', 'b']
 *     onMessage: function (msg) {},                // {id, channel, event, content_type, data}
 *     onStatus: function (status, detail) {},      // see "Statuses" below
 *     onGap: function (channels) {}                // history ran out: messages may be missing
 *   });
 *   sub.transport; sub.lastEventId; sub.channels; sub.closed; sub.close();
 *
 * Options: url (gateway base, default: the origin this script was loaded from), transports (order to try, names
 * from Comet.transports), lastEventId (cursor to resume from), events (SSE event names to listen to besides
 * 'message'), pollTimeout (seconds; sent as &timeout= only when given), stallTimeout (seconds, default 45).
 *
 * Statuses: 'transport' (detail: name now in use), 'connecting' (name), 'open' (name), 'reconnecting' (delay in
 * ms; null while EventSource reconnects by itself), 'gap' (channels), 'error' (reason text; the client keeps
 * retrying), 'closed' (a channel name when the server deleted that channel; null when the subscription is over:
 * close() was called or no channel is left).
 *
 * Every transport hits GET {url}/sub/{channels}?transport=NAME (WebSocket: the same URL on ws:// or wss://).
 * The client tracks one position per channel (the highest message id delivered), so it resumes every reconnect
 * and every fallback from the same cursor and never delivers a message twice.
 */
(function (window, document) {
  'use strict';

  var VERSION = '1.0.0';
  var TRANSPORTS = ['websocket', 'sse', 'stream', 'poll', 'iframe', 'jsonp'];
  // Same origin: native transports first. Cross origin: the CORS-free ones (WebSocket needs the gateway to
  // allowlist the page origin, else its handshake fails with 403 and we move on) before the CORS ones.
  var SAME_ORIGIN_ORDER = ['websocket', 'sse', 'stream', 'poll', 'iframe', 'jsonp'];
  var CROSS_ORIGIN_ORDER = ['websocket', 'jsonp', 'iframe', 'sse', 'stream', 'poll'];
  // SSE event names that cannot carry publisher events (gateway control events and EventSource's own).
  var RESERVED_SSE_EVENTS = ['message', 'gap', 'close', 'reconnect', 'open', 'error'];
  var CHANNEL = /^[A-Za-z0-9_.:@~-]{1,128}$/;
  var CURSOR = /^[0-9]{1,20}(\.[0-9]{1,20})*$/;
  var BACKOFF_MIN = 250;      // ms: first backoff step
  var BACKOFF_MAX = 15000;    // ms: backoff cap
  var QUICK_DROP = 5000;      // ms: a connection that drops sooner than this grows the backoff
  var MAX_FAILURES = 3;       // failures in a row before a transport that once worked is abandoned
  var STREAM_RECYCLE = 8 << 20; // chars of XHR responseText after which a stream is reopened (frees memory)

  // Callbacks for JSONP and same-origin iframe frames: Comet._cb.<name>. Kept if this script is loaded twice.
  var registry = (window.Comet && window.Comet._cb) || {};
  var seq = 0;

  // The default gateway: the origin this script was served from (only known while it first runs).
  var scriptOrigin = (function () {
    var script = document.currentScript;
    try {
      if (script && script.src) return new URL(script.src, location.href).origin;
    } catch (e) { /* fall through */ }
    return location.origin;
  })();

  // ---- small helpers ---------------------------------------------------------------------------------------

  function noop() {}

  function parse(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // Calls a user callback; an exception it throws is reported but never breaks the connection.
  function call(fn, args) {
    if (typeof fn !== 'function') return;
    try { fn.apply(null, args); } catch (e) { setTimeout(function () { throw e; }, 0); }
  }

  // a > b for decimal strings without leading zeros (ids exceed 2^53, so compare as text); null is below all.
  function greater(a, b) {
    if (b == null) return true;
    if (a.length !== b.length) return a.length > b.length;
    return a > b;
  }

  // Splits a cursor into `count` positions (leading zeros dropped), or null when it is not such a cursor.
  function splitCursor(text, count) {
    if (typeof text === 'number') text = String(text);
    if (typeof text !== 'string' || !CURSOR.test(text)) return null;
    var parts = text.split('.');
    if (parts.length !== count) return null;
    return parts.map(function (p) { return p.replace(/^0+(?=[0-9])/, ''); });
  }

  // Full-jitter exponential backoff: a random delay in [0, min(max, min * 2^n)).
  function backoff(n) {
    return Math.random() * Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, Math.min(n, 16)));
  }

  function register(prefix, fn) {
    var name = prefix + (++seq);
    registry[name] = fn;
    return name;
  }

  // A retired callback stays a no-op for a while: a late script or frame may still call it.
  function retire(name) {
    registry[name] = noop;
    setTimeout(function () { delete registry[name]; }, 60000);
  }

  function normalizeChannels(channels) {
    var list = typeof channels === 'string' ? channels.split(',') : Array.prototype.slice.call(channels || []);
    var out = [];
    list.forEach(function (c) {
      c = String(c).trim();
      if (!CHANNEL.test(c)) throw new Error('comet: invalid channel name "' + c + '" (use A-Z a-z 0-9 _ - . : @ ~)');
      if (out.indexOf(c) < 0) out.push(c);
    });
    if (!out.length) throw new Error('comet: no channel given');
    return out.sort(); // the gateway's canonical (cursor) order; names are ASCII, so code-unit order = byte order
  }

  function supported(name, cross) {
    switch (name) {
      case 'websocket': return typeof WebSocket !== 'undefined';
      case 'sse': return typeof EventSource !== 'undefined';
      case 'stream': case 'poll': return typeof XMLHttpRequest !== 'undefined';
      // Cross-origin frames talk through postMessage, which needs a real page origin to target.
      case 'iframe': return !cross || location.origin !== 'null';
      default: return true; // jsonp
    }
  }

  function transportOrder(list, cross) {
    if (typeof list === 'string') list = list.split(',');
    if (!list || !list.length) list = cross ? CROSS_ORIGIN_ORDER : SAME_ORIGIN_ORDER;
    var out = [];
    list.forEach(function (name) {
      name = String(name).trim();
      if (TRANSPORTS.indexOf(name) < 0) throw new Error('comet: unknown transport "' + name + '"');
      if (supported(name, cross) && out.indexOf(name) < 0) out.push(name);
    });
    if (!out.length) throw new Error('comet: none of the transports ' + list.join(', ') + ' works in this browser');
    return out;
  }

  // Handles one object of the stream and iframe transports.
  function onObject(ctx, m) {
    if (!m || typeof m !== 'object' || !ctx.live()) return;
    ctx.alive();
    if ('data' in m) { ctx.started(); ctx.message(m); }
    else if (m.gap) ctx.gap(m.channels);
    else if (m.closed) ctx.closed(m.channel, m.last_event_id);
    else if (m.reconnect) { ctx.absorb(m.last_event_id); ctx.end(null, true); }
    else if (m.last_event_id != null) { ctx.fill(m.last_event_id); ctx.started(); } // the start object
    // {"heartbeat":true}: liveness only
  }

  // Handles one answer of the poll and jsonp transports; true when the next poll should follow.
  function onBatch(ctx, r) {
    if (!r || typeof r !== 'object') { ctx.end(ctx.name + ': malformed answer'); return false; }
    ctx.started();
    if (r.closed) { ctx.closed(r.channel, r.last_event_id); return false; }
    if (r.gap) ctx.gap(r.gap_channels);
    var messages = Array.isArray(r.messages) ? r.messages : [];
    for (var i = 0; i < messages.length && ctx.live(); i++) ctx.message(messages[i]);
    // The answer's cursor lies after its messages, so it is applied only once they are delivered.
    if (r.last_event_id != null) ctx.absorb(r.last_event_id);
    return ctx.live();
  }

  // ---- transports ------------------------------------------------------------------------------------------
  // Each opens one connection for `ctx` (see makeContext) and reports through it; ctx.defer registers cleanup.

  var FACTORIES = {
    websocket: function (ctx) {
      // Channels with a known position resume from it. If only some are known (the socket dropped before every
      // 'subscribed' ack), open the socket on the unknown ones and subscribe to the known ones with their ids.
      var all = ctx.chans;
      var known = all.filter(function (c) { return ctx.position(c) != null; });
      var mixed = known.length > 0 && known.length < all.length;
      var path = mixed ? all.filter(function (c) { return ctx.position(c) == null; }) : all;
      var url = ctx.base.replace(/^http/, 'ws') + '/sub/' + path.join(',');
      var cursor = mixed ? null : ctx.cursor();
      if (cursor) url += '?last_event_id=' + cursor;

      var ws = new WebSocket(url);
      ctx.defer(function () {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { ws.close(1000); } catch (e) { /* already closed */ }
      });
      ctx.watch(); // a handshake that hangs counts as failed
      ws.onopen = function () {
        ctx.unwatch(); // no application heartbeats on WebSocket (the server pings at the protocol level)
        ctx.started();
        if (mixed) {
          known.forEach(function (c) {
            ws.send(JSON.stringify({ type: 'subscribe', channel: c, last_event_id: ctx.position(c) }));
          });
        }
      };
      ws.onmessage = function (e) {
        var m = typeof e.data === 'string' ? parse(e.data) : null;
        if (!m || typeof m !== 'object') return;
        switch (m.type) {
          case undefined: ctx.message(m); break;
          case 'subscribed': if (m.last_event_id != null) ctx.fill(m.last_event_id, [m.channel]); break;
          case 'gap': ctx.gap([m.channel]); break;
          case 'closed': ctx.closed(m.channel, null, true); break; // the socket goes on with the others
          // Shutdown: each channel's position, then close code 1001.
          case 'reconnect': if (m.last_event_id != null) ctx.absorb(m.last_event_id, [m.channel]); break;
          case 'error':
            var text = 'websocket: ' + (m.reason || 'error ' + m.status) + (m.channel ? ' (' + m.channel + ')' : '');
            // A channel's subscription failed on the server's side: reopen the socket (with backoff).
            if (m.status >= 500 && m.channel) ctx.end(text);
            else ctx.status('error', text);
            break;
          // 'unsubscribed' only answers an unsubscribe, which this client never sends
        }
      };
      ws.onclose = function (e) {
        if (e.code === 1000) ctx.stop(); // every channel closed
        else ctx.end('websocket closed (code ' + e.code + ')'); // 1001 = server shutdown, others = dropped
      };
    },

    sse: function (ctx) {
      // SSE data is the raw payload and the event id is the cursor after the message. With several channels
      // the channel is the one whose position advanced since the previous cursor. The first message after a
      // resume can advance several (the server starts each replayed channel just below its first replayed id,
      // in an id: block EventSource does not expose); replay runs in id order, so the message's channel is the
      // one with the smallest new position (a tie, or a stream opened without a cursor: channel null).
      var list = ctx.chans;
      var cursor = ctx.cursor();
      var prev = cursor ? cursor.split('.') : null;
      var es = new EventSource(ctx.url('sse'));
      var selfRetries = 0;
      ctx.defer(function () { es.close(); });
      ctx.watch(); // heartbeats are SSE comments, invisible to EventSource: only the open is watched
      es.onopen = function () {
        ctx.unwatch();
        if (ctx.ok) ctx.status('open', 'sse'); else ctx.started();
        selfRetries = 0;
      };
      es.onerror = function () {
        // A stream that dropped before its first message: only EventSource knows the start cursor (the initial
        // id: block), so let it reconnect by itself with Last-Event-ID, a few times.
        if (ctx.ok && !ctx.cursor() && es.readyState === 0 && ++selfRetries <= MAX_FAILURES) {
          ctx.status('reconnecting', null);
          ctx.watch();
          return;
        }
        // Otherwise close it and reconnect here, from our cursor, like every transport.
        ctx.end('sse: connection failed or closed');
      };

      function onEvent(e) {
        var m = { event: e.type === 'message' ? undefined : e.type, data: e.data };
        if (list.length === 1) {
          var one = splitCursor(e.lastEventId, 1);
          return ctx.accept(list[0], one && one[0], null, m);
        }
        var parts = splitCursor(e.lastEventId, list.length), ch = null, p = null, tie = false;
        if (parts && prev) {
          for (var i = 0; i < parts.length; i++) {
            if (!greater(parts[i], prev[i])) continue;
            if (p === null || greater(p, parts[i])) { ch = list[i]; p = parts[i]; tie = false; }
            else if (p === parts[i]) tie = true;
          }
          if (ch === null) return; // no position advanced: a repeat
          if (tie) ch = p = null;
        }
        if (parts) prev = parts;
        ctx.accept(ch, p, parts ? e.lastEventId : null, m);
      }
      function control(handler) {
        return function (e) {
          // lastEventId here is the start cursor or the last message's: where this stream stands.
          var parts = splitCursor(e.lastEventId, list.length);
          if (parts) { prev = parts; ctx.fill(e.lastEventId); }
          handler(parse(e.data) || {});
        };
      }
      es.addEventListener('message', onEvent);
      ctx.events.forEach(function (name) { es.addEventListener(name, onEvent); });
      es.addEventListener('gap', control(function (d) { ctx.gap(d.channels); }));
      es.addEventListener('close', control(function (d) { ctx.closed(d.channel, null); }));
      es.addEventListener('reconnect', control(function () { ctx.end(null, true); }));
    },

    stream: function (ctx) {
      var xhr = new XMLHttpRequest();
      var seen = 0; // chars of responseText consumed
      xhr.open('GET', ctx.url('stream'));
      ctx.defer(function () { xhr.onreadystatechange = xhr.onprogress = null; xhr.abort(); });
      ctx.watch(); // heartbeats (empty lines) every 15 s keep it alive

      function read() {
        if (xhr.readyState < 3 || xhr.status !== 200) return;
        var text = xhr.responseText, nl;
        if (text.length > seen) ctx.alive();
        while (ctx.live() && (nl = text.indexOf('\n', seen)) >= 0) {
          var line = text.slice(seen, nl).trim();
          seen = nl + 1;
          if (line) onObject(ctx, parse(line)); // an empty line is a heartbeat
        }
        if (seen > STREAM_RECYCLE) ctx.end(null, true);
      }
      xhr.onprogress = read;
      xhr.onreadystatechange = function () {
        read();
        if (xhr.readyState !== 4 || !ctx.live()) return;
        var body = xhr.status === 410 ? parse(xhr.responseText) : null;
        if (body && body.closed) ctx.closed(body.channel, body.last_event_id);
        else ctx.end(xhr.status === 200 ? 'stream: connection closed' : 'stream: HTTP ' + xhr.status);
      };
      xhr.send();
    },

    poll: function (ctx) {
      var xhr = null;
      ctx.defer(function () {
        if (xhr) { xhr.onload = xhr.onerror = xhr.ontimeout = null; xhr.abort(); }
      });
      (function next() {
        if (!ctx.live()) return;
        xhr = new XMLHttpRequest();
        xhr.open('GET', ctx.url('poll', { timeout: ctx.timeoutParam }));
        xhr.timeout = (ctx.pollTimeout + 10) * 1000;
        xhr.onload = function () {
          var r = parse(xhr.responseText);
          if (xhr.status === 200 || (xhr.status === 410 && r && r.closed)) {
            if (onBatch(ctx, r)) next(); // an empty answer is a timeout: poll again at once
          } else {
            ctx.end('poll: HTTP ' + xhr.status);
          }
        };
        xhr.onerror = xhr.ontimeout = function () { ctx.end('poll: request failed'); };
        xhr.send();
      })();
    },

    jsonp: function (ctx) {
      var script = null, name = null, guard = null;
      function clear() {
        clearTimeout(guard);
        if (script) {
          script.onload = script.onerror = null;
          if (script.parentNode) script.parentNode.removeChild(script);
        }
        if (name) retire(name);
        script = name = null;
      }
      ctx.defer(clear);
      (function next() {
        if (!ctx.live()) return;
        var answered = false, answer = null;
        name = register('j', function (r) { answered = true; answer = r; });
        script = document.createElement('script');
        script.async = true;
        script.src = ctx.url('jsonp', { callback: 'Comet._cb.' + name, timeout: ctx.timeoutParam, _: ++seq });
        // onload runs after the script (and so the callback); a 4xx/5xx answer fires onerror instead.
        script.onload = function () {
          clear();
          if (!answered) ctx.end('jsonp: answer without callback');
          else if (onBatch(ctx, answer)) next();
        };
        script.onerror = function () { clear(); ctx.end('jsonp: request failed'); };
        guard = setTimeout(function () { clear(); ctx.end('jsonp: timed out'); }, (ctx.pollTimeout + 10) * 1000);
        (document.head || document.documentElement).appendChild(script);
      })();
    },

    iframe: function (ctx) {
      // A hidden forever frame: each script in it hands one object to parent.Comet._cb.<name> (same origin) or
      // posts it to this page (cross origin; checked against the frame's window and the gateway origin).
      var frame = document.createElement('iframe');
      var extra = {};
      var deliver = function (d) { onObject(ctx, typeof d === 'string' ? parse(d) : d); };
      if (ctx.cross) {
        extra.origin = location.origin;
        var listener = function (e) {
          if (e.source === frame.contentWindow && e.origin === ctx.origin) deliver(e.data);
        };
        window.addEventListener('message', listener);
        ctx.defer(function () { window.removeEventListener('message', listener); });
      } else {
        var name = register('i', deliver);
        extra.callback = 'Comet._cb.' + name;
        ctx.defer(function () { retire(name); });
      }
      frame.title = 'comet';
      frame.tabIndex = -1;
      frame.setAttribute('aria-hidden', 'true');
      frame.style.cssText = 'position:absolute;left:-9999px;top:0;width:1px;height:1px;border:0;visibility:hidden';
      // load fires when the frame's document ends, i.e. the connection closed. Posted messages can still be
      // queued behind it (Chromium dispatches load first), so a cross-origin frame gets a moment to deliver them.
      frame.onload = function () {
        var end = function () { ctx.end('iframe: connection closed'); };
        if (ctx.cross) setTimeout(end, 250); else end();
      };
      frame.src = ctx.url('iframe', extra);
      ctx.defer(function () {
        frame.onload = null;
        // Removed on the next turn: the frame may be running the script that led here.
        setTimeout(function () { if (frame.parentNode) frame.parentNode.removeChild(frame); }, 0);
      });
      ctx.watch();
      (document.body || document.documentElement).appendChild(frame);
    }
  };

  // ---- subscriptions ---------------------------------------------------------------------------------------

  function subscribe(channels, options) {
    var o = options || {};
    var chans = normalizeChannels(channels);
    var base = new URL(o.url || scriptOrigin, location.href).href.replace(/[?#].*$/, '').replace(/\/+$/, '');
    var origin = new URL(base).origin;
    var cross = origin !== location.origin;
    var order = transportOrder(o.transports, cross);
    var pollTimeout = o.pollTimeout > 0 ? Number(o.pollTimeout) : 30;
    var stallSeconds = o.stallTimeout > 0 ? Number(o.stallTimeout) : 45;
    var events = (o.events || []).filter(function (e) {
      return typeof e === 'string' && e && RESERVED_SSE_EVENTS.indexOf(e) < 0;
    });

    // pos[channel]: the highest message id delivered (or the resume position the server gave), null if unknown.
    var pos = Object.create(null);
    chans.forEach(function (c) { pos[c] = null; });
    var badCursor = false;
    if (o.lastEventId != null && o.lastEventId !== '') {
      var seed = splitCursor(String(o.lastEventId), chans.length);
      if (seed) chans.forEach(function (c, i) { pos[c] = seed[i]; });
      else badCursor = true;
    }

    var idx = 0;          // index in `order` of the transport in use
    var failures = 0;     // failures in a row without a start signal (transport that once worked)
    var quick = 0;        // quick drops in a row after a start signal
    var rounds = 0;       // passes through the whole order without any start signal
    var worked = {};      // transports that delivered a start signal (this pass)
    var live = null;      // the context of the current connection
    var timer = null;     // pending (re)connect
    var using = null;     // transport name in use
    var done = false;

    function status(s, detail) { call(o.onStatus, [s, detail]); }

    // The composite cursor: positions in sorted channel order joined by '.', or null if one is unknown.
    function cursor() {
      var out = [];
      for (var i = 0; i < chans.length; i++) {
        if (pos[chans[i]] == null) return null;
        out.push(pos[chans[i]]);
      }
      return out.length ? out.join('.') : null;
    }
    // A cursor after messages that were sent: every position moves up to it.
    function absorb(text, list) {
      var parts = splitCursor(text, list.length);
      if (parts) list.forEach(function (c, i) { if (c in pos && greater(parts[i], pos[c])) pos[c] = parts[i]; });
    }
    // A start cursor (where replay/live delivery begins): it only fills positions still unknown, so a replay
    // after our own cursor is never mistaken for duplicates.
    function fill(text, list) {
      var parts = splitCursor(text, list.length);
      if (parts) list.forEach(function (c, i) { if (pos[c] === null) pos[c] = parts[i]; });
    }

    // Delivers a message unless it is a repeat. ch/p: its channel and id there (null when unknown);
    // composite: the cursor after it (multi-channel non-WebSocket transports).
    function accept(ctx, ch, p, composite, m) {
      if (!ctx.live()) return;
      if (ch != null) {
        if (!(ch in pos)) return; // not (or no longer) subscribed
        if (p != null) {
          if (!greater(p, pos[ch])) return; // delivered before
          pos[ch] = p;
        }
      }
      if (composite) absorb(composite, ctx.chans);
      call(o.onMessage, [{
        id: cursor() || p || (m.id == null ? null : String(m.id)), // the resume cursor just after this message
        channel: ch == null ? null : ch,
        event: m.event == null ? undefined : m.event,
        content_type: m.content_type == null ? undefined : m.content_type,
        data: m.data
      }]);
    }

    // A message object ({id, channel, event?, content_type?, data}) from a JSON transport.
    function message(ctx, m) {
      if (!m || typeof m !== 'object') return;
      var list = ctx.chans, ch, p = null, composite = null, parts;
      if (ctx.name === 'websocket' || list.length === 1) {
        // WebSocket ids are per channel; a single-channel cursor is the message id.
        ch = ctx.name === 'websocket' && m.channel ? m.channel : list[0];
        parts = splitCursor(m.id, 1);
        if (parts) p = parts[0];
      } else {
        // The id is the composite cursor after the message: this channel's position is its slot.
        ch = m.channel;
        parts = splitCursor(m.id, list.length);
        var i = list.indexOf(ch);
        if (parts && i >= 0) { p = parts[i]; composite = String(m.id); }
      }
      accept(ctx, ch, p, composite, m);
    }

    function teardown(ctx) {
      clearTimeout(ctx.stall);
      ctx.watching = false;
      var fns = ctx.cleanups;
      ctx.cleanups = [];
      fns.forEach(function (fn) { try { fn(); } catch (e) { /* best effort */ } });
    }

    function connect() {
      timer = null;
      if (done) return;
      var name = order[idx];
      if (name !== using) { using = name; status('transport', name); }
      status('connecting', name);
      var ctx = makeContext(name);
      live = ctx;
      try { FACTORIES[name](ctx); } catch (e) { end(ctx, name + ': ' + ((e && e.message) || e)); }
    }

    function retry(ms) {
      status('reconnecting', Math.round(ms));
      timer = setTimeout(connect, ms);
    }

    // A connection ended. why: text for an unexpected end; requested: the server asked for a reconnect.
    function end(ctx, why, requested) {
      if (!ctx.live()) return;
      live = null;
      teardown(ctx);
      if (ctx.ok || requested) {
        // It worked, then dropped: the same transport again, from the cursor.
        quick = requested || Date.now() - ctx.t0 > QUICK_DROP ? 0 : quick + 1;
        return retry(backoff(quick));
      }
      status('error', why || ctx.name + ' failed');
      if (worked[ctx.name] && ++failures < MAX_FAILURES) return retry(backoff(failures));
      failures = 0; // never worked, or failed too often: the next transport, at once
      if (++idx < order.length) return connect();
      idx = 0; // every transport failed: start over after a growing pause
      worked = {};
      rounds++;
      retry(backoff(rounds));
    }

    function finish() {
      if (done) return;
      done = true;
      clearTimeout(timer);
      timer = null;
      window.removeEventListener('online', onOnline);
      if (live) { var ctx = live; live = null; teardown(ctx); }
      status('closed', null);
    }

    // Back online: skip the rest of a pending backoff.
    function onOnline() {
      if (timer && !done) { clearTimeout(timer); connect(); }
    }

    // The interface a transport reports through. Every call is ignored once this connection is replaced.
    function makeContext(name) {
      var ctx = {
        name: name, chans: chans.slice(), base: base, origin: origin, cross: cross, events: events,
        pollTimeout: pollTimeout, timeoutParam: o.pollTimeout > 0 ? pollTimeout : null,
        ok: false, t0: 0, stall: null, watching: false, cleanups: [],
        live: function () { return live === ctx && !done; },
        cursor: cursor,
        position: function (c) { return pos[c]; },
        url: function (transport, extra) {
          var q = ['transport=' + transport], cur = cursor();
          if (cur) q.push('last_event_id=' + cur);
          for (var k in extra) if (extra[k] != null) q.push(k + '=' + encodeURIComponent(extra[k]));
          return base + '/sub/' + ctx.chans.join(',') + '?' + q.join('&');
        },
        defer: function (fn) { ctx.cleanups.push(fn); },
        // Stall watch: a connection that receives nothing for stallTimeout is treated as failed/dropped.
        watch: function () { ctx.watching = true; ctx.alive(); },
        unwatch: function () { ctx.watching = false; clearTimeout(ctx.stall); },
        alive: function () {
          if (!ctx.watching || !ctx.live()) return;
          clearTimeout(ctx.stall);
          ctx.stall = setTimeout(function () {
            end(ctx, name + ': nothing received for ' + stallSeconds + ' s (buffering proxy?)');
          }, stallSeconds * 1000);
        },
        started: function () {
          if (!ctx.live() || ctx.ok) return;
          ctx.ok = true;
          ctx.t0 = Date.now();
          worked[name] = true;
          failures = rounds = 0;
          status('open', name);
        },
        message: function (m) { message(ctx, m); },
        accept: function (ch, p, composite, m) { accept(ctx, ch, p, composite, m); },
        fill: function (text, list) { if (ctx.live()) fill(text, list || ctx.chans); },
        absorb: function (text, list) { if (ctx.live()) absorb(text, list || ctx.chans); },
        gap: function (list) {
          if (!ctx.live()) return;
          list = Array.isArray(list) ? list.slice() : [];
          status('gap', list);
          call(o.onGap, [list]);
        },
        // The server deleted a channel. keep: the connection goes on (WebSocket); otherwise it ended and is
        // reopened at once on the remaining channels.
        closed: function (ch, text, keep) {
          if (!ctx.live()) return;
          if (text != null) absorb(text, ctx.chans);
          if (ch == null && ctx.chans.length === 1) ch = ctx.chans[0];
          if (ch != null && ch in pos) {
            delete pos[ch];
            chans = chans.filter(function (c) { return c !== ch; });
            status('closed', ch);
            if (!chans.length) return finish();
          }
          if (!keep) end(ctx, null, true);
        },
        status: function (s, detail) { if (ctx.live()) status(s, detail); },
        end: function (why, requested) { end(ctx, why, requested); },
        stop: function () { if (ctx.live()) finish(); }
      };
      return ctx;
    }

    var handle = { close: finish };
    Object.defineProperties(handle, {
      transport: { enumerable: true, get: function () { return using; } },
      lastEventId: { enumerable: true, get: cursor },
      channels: { enumerable: true, get: function () { return chans.slice(); } },
      closed: { enumerable: true, get: function () { return done; } }
    });

    window.addEventListener('online', onOnline);
    // Start on the next turn, so callbacks never run before subscribe() has returned the handle.
    timer = setTimeout(function () {
      if (badCursor) status('error', 'ignoring lastEventId: not a cursor for ' + chans.length + ' channel(s)');
      connect();
    }, 0);
    return handle;
  }

  window.Comet = {
    version: VERSION,
    transports: TRANSPORTS.slice(),
    defaultUrl: scriptOrigin,
    subscribe: subscribe,
    _cb: registry
  };
})(window, document);

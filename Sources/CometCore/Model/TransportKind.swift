/// How a subscriber's connection is held.
public enum ConnectionKind: Sendable, Hashable {
    /// One long response that carries every message as it comes (SSE, XHR streaming, the forever iframe).
    case stream
    /// One response per poll, held until a message is available or the poll times out (XHR long polling, JSONP).
    case poll
}

/// A subscriber transport named by `?transport=` (or chosen from `Accept` and `?callback=`) on `GET /sub/…`.
///
/// WebSocket is not among them: it is chosen by the request's `Upgrade: websocket` header, not by a parameter.
public enum TransportKind: String, Sendable, Hashable, CaseIterable {
    /// Server-Sent Events (`text/event-stream`).
    case sse
    /// XHR streaming: newline-delimited JSON (`application/x-ndjson`), one message object per line.
    case stream
    /// XHR long polling: `application/json` with a batch of message objects and the cursor.
    case poll
    /// The hidden-iframe forever frame: a chunked HTML document with one `<script>` per message.
    case iframe
    /// JSONP long polling: the long-poll body wrapped in a call of the page's callback.
    case jsonp

    /// How a connection of this transport is held.
    public var connectionKind: ConnectionKind {
        switch self {
        case .sse, .stream, .iframe: .stream
        case .poll, .jsonp: .poll
        }
    }
}

/// A message's encoding that a transport writes unchanged to every one-channel subscriber: rendered once per message
/// (on first use) and shared (``Message/frame(_:)``).
public enum WireFormat: Sendable, Hashable, CaseIterable {
    /// A complete SSE event (`event:`, `data:` lines, `id:`, blank line).
    case sse
    /// The message object and a newline (an XHR-streaming line).
    case ndjsonLine
    /// One HTTP chunk holding `<script>c(<message object>)</script>` (the forever iframe).
    case iframeChunk
    /// One unmasked WebSocket text frame holding the message object.
    case webSocketText
    /// One HTTP chunk holding what a GRIP stream hold appends (``Message/gripStreamContent``); empty when the message
    /// is not for stream holds.
    case gripStreamChunk
    /// What a GRIP stream hold appends, unframed (an HTTP/1.0 client's stream, which ends with the connection).
    case gripStreamRaw
    /// The message as Bayeux clients receive it, `{"channel":"/chat/room1","id":…,"data":…}` (``BayeuxEncoding``);
    /// empty when its channel has no Bayeux name.
    case bayeuxEvent
}

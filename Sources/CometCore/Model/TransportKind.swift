/// How a subscriber's connection is held.
public enum ConnectionKind: Sendable, Hashable {
    /// One long response that carries every message as it comes (SSE, XHR streaming).
    case stream
    /// One response per poll, held until a message is available or the poll times out (XHR long polling).
    case poll
}

/// A subscriber transport: a wire encoding plus a connection kind.
public enum TransportKind: String, Sendable, Hashable, CaseIterable {
    /// Server-Sent Events (`text/event-stream`).
    case sse
    /// XHR streaming: newline-delimited JSON (`application/x-ndjson`), one message object per line.
    case stream
    /// XHR long polling: `application/json` with a batch of message objects and the cursor.
    case poll

    /// How a connection of this transport is held.
    public var connectionKind: ConnectionKind {
        switch self {
        case .sse, .stream: return .stream
        case .poll: return .poll
        }
    }

    /// The `Content-Type` of this transport's responses.
    public var contentType: String {
        switch self {
        case .sse: return "text/event-stream; charset=utf-8"
        case .stream: return "application/x-ndjson; charset=utf-8"
        case .poll: return "application/json; charset=utf-8"
        }
    }
}

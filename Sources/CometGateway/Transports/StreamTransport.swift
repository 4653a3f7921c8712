import CometCore
import NIOCore

/// What a stream transport writes: one long HTTP response (SSE, XHR streaming, the forever iframe) or one channel's
/// subscription on a WebSocket. One value per subscription: it may carry the subscriber's callback or origin.
///
/// A message for a one-channel subscriber is the message's shared frame in ``format`` (rendered once per message,
/// see ``Message/frame(_:)``); everything else (the start, a multi-channel subscriber's messages with their cursor,
/// heartbeats, control events and the end) comes from the transport.
protocol StreamTransport {
    /// The message frame every one-channel subscriber of this transport shares.
    var format: WireFormat { get }
    /// The bytes that start the subscription: the response head (HTTP transports) and the transport's start, which
    /// carries the cursor and, when messages after the client's cursor may be missing, the gap notice.
    func start(_ start: StreamStart) -> ByteBuffer
    /// A message on a subscription of several channels: its own frame, carrying the subscription's `cursor` just
    /// after the message.
    func frame(_ message: Message, cursor: String) -> ByteBuffer
    /// What an idle stream writes every heartbeat interval; nil: nothing (a WebSocket connection pings instead).
    var heartbeat: ByteBuffer? { get }
    /// The last bytes when `channel` was deleted.
    func closed(_ channel: ChannelName) -> ByteBuffer
    /// The last bytes when the gateway drains or the stream reached ``recycleBytes``: reconnect from `cursor`
    /// (SSE clients are told to wait `retry` milliseconds).
    func reconnect(cursor: String, retry: Int) -> ByteBuffer
    /// After this many bytes of messages the stream ends with ``reconnect(cursor:retry:)``; nil: never.
    var recycleBytes: Int? { get }
    /// When ``heartbeat`` is written.
    var heartbeatPace: HeartbeatPace { get }
    /// The transport, for metrics.
    var kind: SubscriberKind { get }
    /// The last bytes when a publisher ends the channel's streams (EPCP `http-stream` `action: "close"`); nil: the
    /// transport ignores it (only GRIP streams end).
    func closedByPublisher() -> ByteBuffer?
    /// What tells the subscriber, mid-stream, that messages of `channel` may be missing (the broker lost them; its
    /// resume at the start would have said so); empty when the transport has no way to say it (GRIP).
    func gap(_ channel: ChannelName) -> ByteBuffer
}

/// When a stream's heartbeat is written, in ticks of the shard's heartbeat timer (`transports.heartbeat_interval`).
struct HeartbeatPace {
    /// Ticks between heartbeats.
    var ticks: Int
    /// Whether a tick counts only when nothing else was written since the last one (idle), or always (interval).
    var onlyWhenIdle: Bool

    /// A heartbeat at each tick that follows a tick interval with nothing written.
    static let everyIdleTick = HeartbeatPace(ticks: 1, onlyWhenIdle: true)
}

/// What a stream's start depends on.
struct StreamStart {
    /// The cursor before the catch-up.
    var cursor: String
    /// The channels whose messages after the client's cursor may be missing.
    var gapChannels: [ChannelName]
    /// The `Date` header.
    var date: String
    /// Headers of this request's response (CORS).
    var headers: [(String, String)]
}

/// Headers of every stream response: no caching, no buffering by an nginx in front.
private let streamHeaders = [("Cache-Control", "no-cache, no-store"), ("X-Accel-Buffering", "no")]

extension StreamTransport {
    /// The head of a stream response: `200`, held until the connection closes.
    static func writeStreamHead(contentType: String, extraHeaders: [(String, String)] = [], _ start: StreamStart,
                                into buffer: inout ByteBuffer) {
        let fixed = extraHeaders.isEmpty ? streamHeaders : streamHeaders + extraHeaders
        HTTPResponse.writeHead(
            status: 200,
            phrase: "OK",
            headers: start.headers.isEmpty ? fixed : fixed + start.headers,
            contentType: contentType,
            contentLength: nil,
            keepAlive: false,
            date: start.date,
            into: &buffer
        )
    }

    /// `["a","b"]`.
    static func channelsJSON(_ channels: [ChannelName]) -> String {
        "[" + channels.map { "\"\($0.rawValue)\"" }.joined(separator: ",") + "]"
    }
}

/// What a long-poll transport writes: one complete response per poll.
protocol PollTransport {
    /// The transport, for metrics.
    var kind: SubscriberKind { get }
    /// The response's `Content-Type`.
    var contentType: String { get }
    /// Headers every response of this transport carries.
    var headers: [(String, String)] { get }
    /// Distinguishes this transport's responses in the loop's shared poll response (``PollResponseCache``).
    var variant: String { get }
    /// Writes what comes before the JSON body (nothing for plain JSON).
    func writePrefix(into buffer: inout ByteBuffer)
    /// Writes what comes after the JSON body.
    func writeSuffix(into buffer: inout ByteBuffer)
    /// The bytes ``writePrefix(into:)`` and ``writeSuffix(into:)`` add.
    var framingLength: Int { get }
    /// The status of the answer to a poll whose channel was deleted.
    var closedStatus: (status: Int, phrase: String) { get }
}

import CometCore
import NIOCore

/// A GRIP stream hold (`Grip-Hold: stream`): the application's response starts the stream, and each message's
/// `http-stream` content (a message published without GRIP formats: its payload) is appended, as one HTTP chunk
/// (an HTTP/1.0 client: unframed, and the stream ends by closing the connection).
///
/// Every subscriber of a channel gets the same bytes, so a message's chunk is rendered once and shared
/// (``WireFormat/gripStreamChunk``), on one channel or several.
struct GripStreamTransport: StreamTransport {
    /// The stream's head and the application's first body, rendered when the hold was made.
    let head: ByteBuffer
    let chunked: Bool
    /// The `Grip-Keep-Alive` bytes, framed.
    let keepAlive: ByteBuffer?
    let heartbeatPace: HeartbeatPace

    /// - Parameters:
    ///   - heartbeatInterval: Seconds between ticks of the shard's heartbeat timer; a keep-alive's timeout is
    ///     rounded up to a whole number of them.
    ///   - continuation: The instruction continues a stream (a next link's answer): it starts with the body only.
    init(instruction: GripInstruction, chunked: Bool, date: String, heartbeatInterval: Double, continuation: Bool = false) {
        var head = continuation ? ByteBuffer() : GripResponses.streamHead(instruction.response, chunked: chunked, date: date)
        if !instruction.response.body.isEmpty {
            head.writeImmutableBuffer(GripEncoding.frame(instruction.response.body, chunked: chunked))
        }
        self.head = head
        self.chunked = chunked
        if let keepAlive = instruction.keepAlive {
            self.keepAlive = GripEncoding.frame(keepAlive.content, chunked: chunked)
            let ticks = (Double(keepAlive.timeout) / max(heartbeatInterval, 0.001)).rounded(.up)
            self.heartbeatPace = HeartbeatPace(ticks: max(1, Int(min(ticks, 1e9))), onlyWhenIdle: !keepAlive.interval)
        } else {
            self.keepAlive = nil
            self.heartbeatPace = .everyIdleTick
        }
    }

    var format: WireFormat { self.chunked ? .gripStreamChunk : .gripStreamRaw }

    func start(_ start: StreamStart) -> ByteBuffer { self.head }

    /// The same bytes on several channels: GRIP content carries no cursor.
    func frame(_ message: Message, cursor: String) -> ByteBuffer { message.frame(self.format) }

    var heartbeat: ByteBuffer? { self.keepAlive }

    func closed(_ channel: ChannelName) -> ByteBuffer { self.end }

    func reconnect(cursor: String, retry: Int) -> ByteBuffer { self.end }

    var kind: SubscriberKind { .gripStream }

    var recycleBytes: Int? { nil }

    func gap(_ channel: ChannelName) -> ByteBuffer { ByteBuffer() }  // GRIP content has no such notice

    func closedByPublisher() -> ByteBuffer? { self.end }

    /// The end of the body: the last chunk (unframed: nothing; the connection's close ends it).
    private var end: ByteBuffer { self.chunked ? IframeEncoding.lastChunk : ByteBuffer() }
}

/// A GRIP response hold (`Grip-Hold: response`): answered by the first message meant for it
/// (``GripResponses/response(for:held:)``), or with the application's response when it times out.
struct GripResponseTransport {
    /// The application's response: the answer on timeout.
    let held: GripInstruction.Response
    /// Seconds to wait.
    let timeout: Int
    /// The request was `HEAD`: answers carry no body.
    let headOnly: Bool
}

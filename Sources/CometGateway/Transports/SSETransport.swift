import CometCore
import NIOCore

/// Server-Sent Events (`text/event-stream`): `?transport=sse` or `Accept: text/event-stream`.
struct SSETransport: StreamTransport {
    /// The `retry:` sent at the start, in milliseconds.
    let retry: Int

    var format: WireFormat { .sse }

    func start(_ start: StreamStart) -> ByteBuffer {
        var buffer = ByteBuffer()
        Self.writeStreamHead(contentType: "text/event-stream; charset=utf-8", start, into: &buffer)
        buffer.writeStaticString("retry: ")
        buffer.writeString(String(self.retry))
        buffer.writeStaticString("\n")
        // An id without data: sets the browser's lastEventId without an event, so a reconnect before any message
        // still resumes.
        SSEEncoding.writeIDAndEnd(start.cursor, into: &buffer)
        if !start.gapChannels.isEmpty {
            buffer.writeImmutableBuffer(
                SSEEncoding.controlEvent("gap", json: "{\"channels\":\(Self.channelsJSON(start.gapChannels))}"))
        }
        return buffer
    }

    func frame(_ message: Message, cursor: String) -> ByteBuffer {
        var own = message.wire.sseFields
        SSEEncoding.writeIDAndEnd(cursor, into: &own)  // copies the shared fields: one write, not two
        return own
    }

    var heartbeat: ByteBuffer? { SSEEncoding.heartbeat }

    func closed(_ channel: ChannelName) -> ByteBuffer {
        SSEEncoding.controlEvent("close", json: "{\"closed\":true,\"channel\":\"\(channel.rawValue)\"}")
    }

    func reconnect(cursor: String, retry: Int) -> ByteBuffer {
        var buffer = SSEEncoding.retry(milliseconds: retry)
        buffer.writeImmutableBuffer(SSEEncoding.controlEvent("reconnect", json: "{\"reason\":\"shutdown\"}"))
        return buffer
    }

    var kind: SubscriberKind { .sse }

    var recycleBytes: Int? { nil }

    var heartbeatPace: HeartbeatPace { .everyIdleTick }

    func gap(_ channel: ChannelName) -> ByteBuffer {
        SSEEncoding.controlEvent("gap", json: "{\"channels\":\(Self.channelsJSON([channel]))}")
    }

    func closedByPublisher() -> ByteBuffer? { nil }  // only GRIP streams end on a publisher's close
}

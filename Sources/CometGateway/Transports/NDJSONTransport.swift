import CometCore
import NIOCore

/// XHR streaming: newline-delimited JSON (`application/x-ndjson`), `?transport=stream`.
struct NDJSONTransport: StreamTransport {
    var format: WireFormat { .ndjsonLine }

    func start(_ start: StreamStart) -> ByteBuffer {
        var buffer = ByteBuffer()
        Self.writeStreamHead(contentType: "application/x-ndjson; charset=utf-8", start, into: &buffer)
        buffer.writeStaticString("{\"last_event_id\":\"")
        buffer.writeString(start.cursor)
        buffer.writeStaticString("\"}\n")
        if !start.gapChannels.isEmpty {
            buffer.writeStaticString("{\"gap\":true,\"channels\":")
            buffer.writeString(Self.channelsJSON(start.gapChannels))
            buffer.writeStaticString("}\n")
        }
        return buffer
    }

    func frame(_ message: Message, cursor: String) -> ByteBuffer {
        message.wire.json(cursor: cursor, suffix: "\n")
    }

    var heartbeat: ByteBuffer? { Self.emptyLine }

    func closed(_ channel: ChannelName) -> ByteBuffer {
        ByteBuffer(string: "{\"closed\":true,\"channel\":\"\(channel.rawValue)\"}\n")
    }

    func reconnect(cursor: String, retry: Int) -> ByteBuffer {
        ByteBuffer(string: "{\"reconnect\":true,\"last_event_id\":\"\(cursor)\"}\n")
    }

    var kind: SubscriberKind { .stream }

    var recycleBytes: Int? { nil }

    var heartbeatPace: HeartbeatPace { .everyIdleTick }

    func gap(_ channel: ChannelName) -> ByteBuffer {
        ByteBuffer(string: "{\"gap\":true,\"channels\":\(Self.channelsJSON([channel]))}\n")
    }

    func closedByPublisher() -> ByteBuffer? { nil }  // only GRIP streams end on a publisher's close

    private static let emptyLine = ByteBuffer(string: "\n")
}

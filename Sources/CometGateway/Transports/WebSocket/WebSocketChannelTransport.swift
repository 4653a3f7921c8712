import CometCore
import NIOCore

/// One channel's subscription on a WebSocket: text frames holding JSON. Messages are the message object (the
/// shared ``WireFormat/webSocketText`` frame: every WebSocket subscription is one channel, so a message's `id` is
/// that channel's position); control messages carry a `type`.
struct WebSocketChannelTransport: StreamTransport {
    let channel: ChannelName

    var format: WireFormat { .webSocketText }

    func start(_ start: StreamStart) -> ByteBuffer {
        var buffer = WebSocketEncoding.text(
            "{\"type\":\"subscribed\",\"channel\":\"\(self.channel.rawValue)\",\"last_event_id\":\"\(start.cursor)\"}")
        if !start.gapChannels.isEmpty {
            buffer.writeImmutableBuffer(WebSocketEncoding.text("{\"type\":\"gap\",\"channel\":\"\(self.channel.rawValue)\"}"))
        }
        return buffer
    }

    func frame(_ message: Message, cursor: String) -> ByteBuffer {
        WebSocketEncoding.frame(.text, payload: message.wire.json(cursor: cursor))
    }

    var heartbeat: ByteBuffer? { nil }

    func closed(_ channel: ChannelName) -> ByteBuffer {
        WebSocketEncoding.text("{\"type\":\"closed\",\"channel\":\"\(channel.rawValue)\"}")
    }

    func reconnect(cursor: String, retry: Int) -> ByteBuffer {
        WebSocketEncoding.text(
            "{\"type\":\"reconnect\",\"channel\":\"\(self.channel.rawValue)\",\"last_event_id\":\"\(cursor)\"}")
    }

    var kind: SubscriberKind { .webSocket }

    var recycleBytes: Int? { nil }

    var heartbeatPace: HeartbeatPace { .everyIdleTick }

    func gap(_ channel: ChannelName) -> ByteBuffer {
        WebSocketEncoding.text("{\"type\":\"gap\",\"channel\":\"\(self.channel.rawValue)\"}")
    }

    func closedByPublisher() -> ByteBuffer? { nil }  // only GRIP streams end on a publisher's close
}

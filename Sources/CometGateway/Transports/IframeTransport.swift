import CometCore
import NIOCore

/// The hidden-iframe forever frame, `?transport=iframe`: a chunked `text/html` document with one `<script>` per
/// event (``IframeEncoding``). Each script calls `c(obj)`, which the document's first script defines to call the
/// parent's callback (same origin) or post to the parent (`?origin=`, an allowed origin).
struct IframeTransport: StreamTransport {
    let delivery: IframeEncoding.Delivery
    /// Whitespace bytes before the first script.
    let padding: Int
    /// Bytes of messages after which the document ends and tells the parent to reconnect.
    let maxBytes: Int

    var format: WireFormat { .iframeChunk }

    func start(_ start: StreamStart) -> ByteBuffer {
        var buffer = ByteBuffer()
        Self.writeStreamHead(contentType: "text/html; charset=utf-8", extraHeaders: [("Transfer-Encoding", "chunked")],
                             start, into: &buffer)
        var document = IframeEncoding.documentStart(delivery: self.delivery, padding: self.padding)
        document.writeImmutableBuffer(IframeEncoding.script(json: ByteBuffer(string: "{\"last_event_id\":\"\(start.cursor)\"}")))
        if !start.gapChannels.isEmpty {
            let gap = "{\"gap\":true,\"channels\":\(Self.channelsJSON(start.gapChannels))}"
            document.writeImmutableBuffer(IframeEncoding.script(json: ByteBuffer(string: gap)))
        }
        IframeEncoding.writeChunk(document, into: &buffer)
        return buffer
    }

    func frame(_ message: Message, cursor: String) -> ByteBuffer {
        var chunk = ByteBuffer()
        IframeEncoding.writeChunk(IframeEncoding.script(json: message.wire.json(cursor: cursor)), into: &chunk)
        return chunk
    }

    var heartbeat: ByteBuffer? { IframeEncoding.heartbeat }

    func closed(_ channel: ChannelName) -> ByteBuffer {
        self.ending("{\"closed\":true,\"channel\":\"\(channel.rawValue)\"}")
    }

    func reconnect(cursor: String, retry: Int) -> ByteBuffer {
        self.ending("{\"reconnect\":true,\"last_event_id\":\"\(cursor)\"}")
    }

    var kind: SubscriberKind { .iframe }

    var recycleBytes: Int? { self.maxBytes }

    var heartbeatPace: HeartbeatPace { .everyIdleTick }

    func gap(_ channel: ChannelName) -> ByteBuffer {
        var chunk = ByteBuffer()
        let json = "{\"gap\":true,\"channels\":\(Self.channelsJSON([channel]))}"
        IframeEncoding.writeChunk(IframeEncoding.script(json: ByteBuffer(string: json)), into: &chunk)
        return chunk
    }

    func closedByPublisher() -> ByteBuffer? { nil }  // only GRIP streams end on a publisher's close

    /// A last script, then the end of the document and of the chunked body.
    private func ending(_ json: String) -> ByteBuffer {
        var buffer = IframeEncoding.scriptChunk(json: json)
        buffer.writeImmutableBuffer(IframeEncoding.end)
        return buffer
    }
}

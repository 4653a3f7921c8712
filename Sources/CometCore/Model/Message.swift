import NIOCore

/// A published message, immutable and shared by every subscriber and by history.
///
/// A message carries its wire encodings, rendered once when it is published (``MessageWire``): fan-out writes the
/// same bytes (the same `ByteBuffer` storage) to every subscriber of a transport.
public final class Message: Sendable {
    /// The channel the message was published to.
    public let channel: ChannelName
    /// The message id: its channel sequence number (monotonic per channel).
    public let id: UInt64
    /// The event name the publisher gave, if any.
    public let event: String?
    /// The publisher's `Content-Type`, if any.
    public let contentType: String?
    /// The payload (valid UTF-8).
    public let data: ByteBuffer
    /// Publish time, microseconds since the Unix epoch (wall clock); history ages messages by it.
    public let publishedAt: UInt64
    /// The pre-rendered encodings.
    public let wire: MessageWire

    /// Creates a message and renders its encodings.
    public init(
        channel: ChannelName,
        id: UInt64,
        event: String?,
        contentType: String?,
        data: ByteBuffer,
        publishedAt: UInt64
    ) {
        self.channel = channel
        self.id = id
        self.event = event
        self.contentType = contentType
        self.publishedAt = publishedAt
        let wire = MessageWire(channel: channel, id: id, event: event, contentType: contentType, data: data)
        self.wire = wire
        self.data = wire.data
    }

    /// Bytes this message accounts for in history limits (its payload).
    public var payloadByteCount: Int { self.data.readableBytes }
}

/// A message's encodings, all slices of one buffer (one allocation per message).
public struct MessageWire: Sendable {
    /// The payload.
    public let data: ByteBuffer
    /// A complete SSE event for a single-channel subscription: `event:`, `data:` lines, `id: ID`, blank line.
    public let sse: ByteBuffer
    /// The SSE fields without the `id:` line and the blank line; a multi-channel subscription appends its own cursor.
    public let sseFields: ByteBuffer
    /// The message object `{"id":"ID","channel":…,"data":…}` followed by `\n` (an XHR-streaming line).
    public let jsonLine: ByteBuffer
    /// The message object without the newline.
    public let json: ByteBuffer
    /// The part of ``json`` after the id's value: `","channel":…}`. A multi-channel subscription writes
    /// `{"id":"` + its cursor + this.
    public let jsonAfterID: ByteBuffer

    init(channel: ChannelName, id: UInt64, event: String?, contentType: String?, data: ByteBuffer) {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.readableBytes * 3 + channel.rawValue.utf8.count + 128)
        // 1. the payload
        buffer.writeImmutableBuffer(data)
        let dataEnd = buffer.writerIndex
        // 2. SSE
        if let event {
            buffer.writeStaticString("event: ")
            buffer.writeString(event)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        SSEEncoding.writeDataLines(data, into: &buffer)
        let sseFieldsEnd = buffer.writerIndex
        buffer.writeStaticString("id: ")
        JSONEncoding.writeDecimal(id, into: &buffer)
        buffer.writeStaticString("\n\n")
        let sseEnd = buffer.writerIndex
        // 3. JSON object line
        buffer.writeStaticString("{\"id\":\"")
        JSONEncoding.writeDecimal(id, into: &buffer)
        let afterID = buffer.writerIndex
        buffer.writeStaticString("\",\"channel\":\"")
        buffer.writeString(channel.rawValue)  // the channel charset needs no escaping
        buffer.writeInteger(UInt8(ascii: "\""))
        if let event {
            buffer.writeStaticString(",\"event\":")
            JSONEncoding.writeString(event, into: &buffer)
        }
        if let contentType {
            buffer.writeStaticString(",\"content_type\":")
            JSONEncoding.writeString(contentType, into: &buffer)
        }
        buffer.writeStaticString(",\"data\":")
        JSONEncoding.writeString(data, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
        let jsonEnd = buffer.writerIndex
        buffer.writeInteger(UInt8(ascii: "\n"))
        let lineEnd = buffer.writerIndex

        self.data = buffer.getSlice(at: 0, length: dataEnd)!
        self.sse = buffer.getSlice(at: dataEnd, length: sseEnd - dataEnd)!
        self.sseFields = buffer.getSlice(at: dataEnd, length: sseFieldsEnd - dataEnd)!
        self.jsonLine = buffer.getSlice(at: sseEnd, length: lineEnd - sseEnd)!
        self.json = buffer.getSlice(at: sseEnd, length: jsonEnd - sseEnd)!
        self.jsonAfterID = buffer.getSlice(at: afterID, length: jsonEnd - afterID)!
    }
}

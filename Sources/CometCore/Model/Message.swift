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
        // Every encoding is assembled in one pass over raw memory sized up front (exactly, but for the SSE lines'
        // bound), so a message costs one allocation and one buffer call however many pieces it has.
        var channelText = channel.rawValue
        var eventText = event ?? ""
        var typeText = contentType ?? ""
        let hasEvent = event != nil
        let hasType = contentType != nil
        var buffer = ByteBuffer()
        var marks = (dataEnd: 0, sseFieldsEnd: 0, sseEnd: 0, afterID: 0, jsonEnd: 0, lineEnd: 0)
        data.withUnsafeReadableBytes { payload in
            channelText.withUTF8 { channelBytes in
                eventText.withUTF8 { eventBytes in
                    typeText.withUTF8 { typeBytes in
                        let channelBytes = UnsafeRawBufferPointer(channelBytes)
                        let eventBytes = UnsafeRawBufferPointer(eventBytes)
                        let typeBytes = UnsafeRawBufferPointer(typeBytes)
                        let eventJSON = hasEvent ? JSONEncoding.quotedLength(eventBytes) : 0
                        let typeJSON = hasType ? JSONEncoding.quotedLength(typeBytes) : 0
                        let dataJSON = JSONEncoding.quotedLength(payload)
                        let sse = (hasEvent ? 8 + eventBytes.count : 0) + SSEEncoding.dataLinesBound(payload) + 26
                        let json = 41 + channelBytes.count + (hasEvent ? 9 + eventJSON : 0)
                            + (hasType ? 16 + typeJSON : 0) + 8 + dataJSON + 2
                        let capacity = payload.count + sse + json
                        buffer.reserveCapacity(capacity)
                        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
                            var out = RawWriter(memory)
                            // 1. the payload
                            out.append(payload)
                            marks.dataEnd = out.count
                            // 2. SSE
                            if hasEvent {
                                out.append("event: ")
                                out.append(eventBytes)
                                out.appendByte(UInt8(ascii: "\n"))
                            }
                            SSEEncoding.writeDataLines(payload, into: &out)
                            marks.sseFieldsEnd = out.count
                            out.append("id: ")
                            out.appendDecimal(id)
                            out.append("\n\n")
                            marks.sseEnd = out.count
                            // 3. JSON object line
                            out.append("{\"id\":\"")
                            out.appendDecimal(id)
                            marks.afterID = out.count
                            out.append("\",\"channel\":\"")
                            out.append(channelBytes)  // the channel charset needs no escaping
                            out.appendByte(UInt8(ascii: "\""))
                            if hasEvent {
                                out.append(",\"event\":")
                                out.appendJSONString(eventBytes, quotedLength: eventJSON)
                            }
                            if hasType {
                                out.append(",\"content_type\":")
                                out.appendJSONString(typeBytes, quotedLength: typeJSON)
                            }
                            out.append(",\"data\":")
                            out.appendJSONString(payload, quotedLength: dataJSON)
                            out.appendByte(UInt8(ascii: "}"))
                            marks.jsonEnd = out.count
                            out.appendByte(UInt8(ascii: "\n"))
                            marks.lineEnd = out.count
                            return out.count
                        }
                    }
                }
            }
        }
        self.data = buffer.getSlice(at: 0, length: marks.dataEnd)!
        self.sse = buffer.getSlice(at: marks.dataEnd, length: marks.sseEnd - marks.dataEnd)!
        self.sseFields = buffer.getSlice(at: marks.dataEnd, length: marks.sseFieldsEnd - marks.dataEnd)!
        self.jsonLine = buffer.getSlice(at: marks.sseEnd, length: marks.lineEnd - marks.sseEnd)!
        self.json = buffer.getSlice(at: marks.sseEnd, length: marks.jsonEnd - marks.sseEnd)!
        self.jsonAfterID = buffer.getSlice(at: marks.afterID, length: marks.jsonEnd - marks.afterID)!
    }
}

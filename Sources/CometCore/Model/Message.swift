import NIOCore
import Synchronization

/// A published message, immutable and shared by every subscriber and by history.
///
/// A message carries its wire encodings (``MessageWire``), each rendered at most once, when a subscriber or a
/// replay first needs it: fan-out writes the same bytes (the same `ByteBuffer` storage) to every subscriber of a
/// transport, and a message nobody reads in a format (one published to a channel without subscribers, kept for
/// resume) costs nothing in that format.
public final class Message: Sendable {
    /// The channel the message was published to.
    public let channel: ChannelName
    /// The message id: its channel sequence number (monotonic per channel).
    public let id: UInt64
    /// The event name the publisher gave, if any.
    public let event: String?
    /// The publisher's `Content-Type`, if any.
    public let contentType: String?
    /// The payload (valid UTF-8), in storage of its own (never a slice of a request's buffer).
    public let data: ByteBuffer
    /// Publish time, microseconds since the Unix epoch (wall clock); history ages messages by it.
    public let publishedAt: UInt64
    /// What GRIP holds get of it (a message published through Pushpin's endpoint), if anything beyond the payload.
    public let grip: GripContent?
    /// The SSE encoding (a retained ``SSEParts``), 0 until rendered.
    private let sseParts = Atomic<UInt>(0)
    /// The JSON encoding (a retained ``JSONParts``), 0 until rendered.
    private let jsonParts = Atomic<UInt>(0)
    /// The forever iframe's chunk (a retained ``SharedFrame``), 0 until rendered.
    private let iframeChunk = Atomic<UInt>(0)
    /// The WebSocket text frame (a retained ``SharedFrame``), 0 until rendered.
    private let webSocketText = Atomic<UInt>(0)
    /// The GRIP stream chunk (a retained ``SharedFrame``), 0 until rendered.
    private let gripChunk = Atomic<UInt>(0)
    /// The Bayeux delivery (a retained ``SharedFrame``), 0 until rendered.
    private let bayeuxEvent = Atomic<UInt>(0)

    /// Creates a message. `data` is copied into storage of its own.
    public init(
        channel: ChannelName,
        id: UInt64,
        event: String?,
        contentType: String?,
        data: ByteBuffer,
        publishedAt: UInt64,
        grip: GripContent? = nil
    ) {
        self.grip = grip
        self.channel = channel
        self.id = id
        self.event = event
        self.contentType = contentType
        self.publishedAt = publishedAt
        var own = ByteBuffer()
        own.reserveCapacity(data.readableBytes)
        own.writeImmutableBuffer(data)
        self.data = own
    }

    deinit {
        let sse = self.sseParts.load(ordering: .acquiring)
        if sse != 0 { Unmanaged<SSEParts>.fromOpaque(UnsafeRawPointer(bitPattern: sse)!).release() }
        let json = self.jsonParts.load(ordering: .acquiring)
        if json != 0 { Unmanaged<JSONParts>.fromOpaque(UnsafeRawPointer(bitPattern: json)!).release() }
        Self.releaseFrame(self.iframeChunk.load(ordering: .acquiring))
        Self.releaseFrame(self.webSocketText.load(ordering: .acquiring))
        Self.releaseFrame(self.gripChunk.load(ordering: .acquiring))
        Self.releaseFrame(self.bayeuxEvent.load(ordering: .acquiring))
    }

    /// Releases a retained ``SharedFrame`` slot's value, if it was rendered (no array, no allocation per message).
    @inline(__always)
    private static func releaseFrame(_ slot: UInt) {
        if slot != 0 { Unmanaged<SharedFrame>.fromOpaque(UnsafeRawPointer(bitPattern: slot)!).release() }
    }

    /// The complete frame of this message in `format`, as every one-channel subscriber of a transport using that
    /// format receives it: rendered on first use, then shared (one atomic load).
    @inline(__always)
    public func frame(_ format: WireFormat) -> ByteBuffer {
        switch format {
        case .sse: self.sse.event
        case .ndjsonLine: self.json.line
        case .iframeChunk: self.shared(self.iframeChunk) { IframeEncoding.messageChunk(object: $0.json.object) }
        case .webSocketText: self.shared(self.webSocketText) { message in
            let object = message.grip?.webSocketContent.map { JSONParts(message, data: $0).object } ?? message.json.object
            return WebSocketEncoding.frame(.text, payload: object)
        }
        case .gripStreamChunk: self.shared(self.gripChunk) { $0.gripStreamContent.map(GripEncoding.chunk) ?? ByteBuffer() }
        case .gripStreamRaw: self.gripStreamContent ?? ByteBuffer()
        case .bayeuxEvent: self.shared(self.bayeuxEvent) { BayeuxEncoding.event($0) }
        }
    }

    /// What a GRIP stream hold appends: the `http-stream` content, or the payload of a message published without
    /// GRIP formats; nil when the message has GRIP formats but no `http-stream` (stream holds skip it).
    public var gripStreamContent: ByteBuffer? {
        guard let grip = self.grip else { return self.data }
        return grip.streamContent
    }

    @inline(__always)
    private func shared(_ slot: borrowing Atomic<UInt>, render: (Message) -> ByteBuffer) -> ByteBuffer {
        let bits = slot.load(ordering: .acquiring)
        if bits != 0 {
            return Unmanaged<SharedFrame>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue().bytes
        }
        return Self.publish(SharedFrame(render(self)), in: slot).bytes
    }

    /// Bytes this message accounts for in history limits (its payload).
    public var payloadByteCount: Int { self.data.readableBytes }

    /// The message's encodings.
    public var wire: MessageWire { MessageWire(message: self) }

    /// The SSE encoding, rendered on first use (one atomic load once rendered).
    @inline(__always)
    var sse: SSEParts {
        let bits = self.sseParts.load(ordering: .acquiring)
        if bits != 0 { return Unmanaged<SSEParts>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue() }
        return Self.publish(SSEParts(self), in: self.sseParts)
    }

    /// The JSON encoding, rendered on first use (one atomic load once rendered).
    @inline(__always)
    var json: JSONParts {
        let bits = self.jsonParts.load(ordering: .acquiring)
        if bits != 0 { return Unmanaged<JSONParts>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue() }
        return Self.publish(JSONParts(self), in: self.jsonParts)
    }

    /// Stores a rendered encoding unless another thread stored one first; returns the one stored.
    private static func publish<Parts: AnyObject>(_ parts: Parts, in slot: borrowing Atomic<UInt>) -> Parts {
        let retained = Unmanaged.passRetained(parts)
        let bits = UInt(bitPattern: retained.toOpaque())
        let (exchanged, current) = slot.compareExchange(expected: 0, desired: bits, ordering: .acquiringAndReleasing)
        if exchanged { return parts }
        retained.release()  // rendered concurrently on another event loop: use that one
        return Unmanaged<Parts>.fromOpaque(UnsafeRawPointer(bitPattern: current)!).takeUnretainedValue()
    }
}

/// A message's encodings, each rendered once on first use and shared from then on.
public struct MessageWire: Sendable {
    let message: Message

    /// The payload.
    public var data: ByteBuffer { self.message.data }
    /// A complete SSE event for a single-channel subscription: `event:`, `data:` lines, `id: ID`, blank line.
    public var sse: ByteBuffer { self.message.sse.event }
    /// The SSE fields without the `id:` line and the blank line; a multi-channel subscription appends its own cursor.
    public var sseFields: ByteBuffer { self.message.sse.fields }
    /// The message object `{"id":"ID","channel":…,"data":…}` followed by `\n` (an XHR-streaming line).
    public var jsonLine: ByteBuffer { self.message.json.line }
    /// The message object without the newline.
    public var json: ByteBuffer { self.message.json.object }
    /// The part of ``json`` after the id's value: `","channel":…}`. A multi-channel subscription writes
    /// `{"id":"` + its cursor + this.
    public var jsonAfterID: ByteBuffer { self.message.json.afterID }

    /// The message object with `cursor` as its `id` (a multi-channel subscriber's own copy), followed by `suffix`.
    public func json(cursor: String, suffix: StaticString = "") -> ByteBuffer {
        let afterID = self.jsonAfterID
        var object = ByteBuffer()
        object.reserveCapacity(8 + cursor.utf8.count + afterID.readableBytes + suffix.utf8CodeUnitCount)
        object.writeStaticString("{\"id\":\"")
        object.writeString(cursor)
        object.writeImmutableBuffer(afterID)
        object.writeStaticString(suffix)
        return object
    }
}

/// A rendered frame, shared through an atomic slot of its message.
final class SharedFrame: Sendable {
    let bytes: ByteBuffer
    init(_ bytes: ByteBuffer) { self.bytes = bytes }
}

/// The SSE encoding of a message: slices of one buffer.
final class SSEParts: Sendable {
    let event: ByteBuffer
    let fields: ByteBuffer

    init(_ message: Message) {
        var eventText = message.event ?? ""
        let hasEvent = message.event != nil
        let id = message.id
        var buffer = ByteBuffer()
        var fieldsEnd = 0
        message.data.withUnsafeReadableBytes { payload in
            eventText.withUTF8 { eventBytes in
                let eventBytes = UnsafeRawBufferPointer(eventBytes)
                let capacity = (hasEvent ? 8 + eventBytes.count : 0) + SSEEncoding.dataLinesBound(payload) + 26
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
                    var out = RawWriter(memory)
                    if hasEvent {
                        out.append("event: ")
                        out.append(eventBytes)
                        out.appendByte(UInt8(ascii: "\n"))
                    }
                    SSEEncoding.writeDataLines(payload, into: &out)
                    fieldsEnd = out.count
                    out.append("id: ")
                    out.appendDecimal(id)
                    out.append("\n\n")
                    return out.count
                }
            }
        }
        self.event = buffer
        self.fields = buffer.getSlice(at: 0, length: fieldsEnd)!
    }
}

/// The JSON encoding of a message: slices of one buffer.
final class JSONParts: Sendable {
    let line: ByteBuffer
    let object: ByteBuffer
    let afterID: ByteBuffer

    convenience init(_ message: Message) {
        self.init(message, data: message.data)
    }

    /// The message object with `data` as its `data` (a WebSocket subscriber's, from an EPCP `ws-message`).
    init(_ message: Message, data: ByteBuffer) {
        // Assembled in one pass over raw memory sized exactly up front: one allocation, one buffer call.
        var channelText = message.channel.rawValue
        var eventText = message.event ?? ""
        var typeText = message.contentType ?? ""
        let hasEvent = message.event != nil
        let hasType = message.contentType != nil
        let id = message.id
        var buffer = ByteBuffer()
        var marks = (afterID: 0, objectEnd: 0)
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
                        let capacity = 41 + channelBytes.count + (hasEvent ? 9 + eventJSON : 0)
                            + (hasType ? 16 + typeJSON : 0) + 8 + dataJSON + 2
                        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
                            var out = RawWriter(memory)
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
                            marks.objectEnd = out.count
                            out.appendByte(UInt8(ascii: "\n"))
                            return out.count
                        }
                    }
                }
            }
        }
        self.line = buffer
        self.object = buffer.getSlice(at: 0, length: marks.objectEnd)!
        self.afterID = buffer.getSlice(at: marks.afterID, length: marks.objectEnd - marks.afterID)!
    }
}

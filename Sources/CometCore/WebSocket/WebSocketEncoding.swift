import NIOCore

/// Renders the frames a WebSocket server sends (RFC 6455, section 5.2): never masked, never fragmented.
public enum WebSocketEncoding {
    /// Frame opcodes (RFC 6455, section 5.2).
    public enum Opcode: UInt8, Sendable, Hashable {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA

        /// Whether this is a control frame (close, ping, pong).
        public var isControl: Bool { self.rawValue & 0x8 != 0 }
    }

    /// The bytes of a frame header with FIN set, for a payload of `length` bytes.
    public static func headerLength(payload length: Int) -> Int {
        length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// Appends a final, unmasked frame header.
    public static func writeHeader(_ opcode: Opcode, payloadLength length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode.rawValue)
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= 0xFFFF {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }

    /// A complete final frame with `payload`.
    public static func frame(_ opcode: Opcode, payload: ByteBuffer) -> ByteBuffer {
        var frame = ByteBuffer()
        frame.reserveCapacity(Self.headerLength(payload: payload.readableBytes) + payload.readableBytes)
        Self.writeHeader(opcode, payloadLength: payload.readableBytes, into: &frame)
        frame.writeImmutableBuffer(payload)
        return frame
    }

    /// A text frame holding `text`.
    public static func text(_ text: String) -> ByteBuffer {
        Self.frame(.text, payload: ByteBuffer(string: text))
    }

    /// A close frame with a status code and a reason (at most 123 bytes of it are kept, on a character boundary).
    public static func close(code: UInt16, reason: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(code)
        var kept = Substring(reason)
        while kept.utf8.count > 123 { kept = kept.dropLast() }
        payload.writeString(String(kept))
        return Self.frame(.close, payload: payload)
    }

    /// An empty ping frame.
    public static let ping = Self.frame(.ping, payload: ByteBuffer())
}

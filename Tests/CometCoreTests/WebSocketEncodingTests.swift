import CometCore
import NIOCore
import Testing

// Unit tests for `WebSocketEncoding`: the frames a server sends (RFC 6455, section 5.2). Expected header bytes are
// written by hand from the section 5.2 layout; whole frames are also read back with the small spec reader below.

/// A server frame read per RFC 6455 section 5.2 (server frames are never masked).
private struct ServerFrame: Equatable {
    var fin: Bool
    var rsv: UInt8
    var opcode: UInt8
    var payload: [UInt8]

    init(fin: Bool, rsv: UInt8, opcode: UInt8, payload: [UInt8]) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.payload = payload
    }

    /// Reads exactly one unmasked frame from `bytes`; nil if the bytes are not exactly one such frame.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 2, bytes[1] & 0x80 == 0 else { return nil }
        self.fin = bytes[0] & 0x80 != 0
        self.rsv = (bytes[0] >> 4) & 0x7
        self.opcode = bytes[0] & 0x0F
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count == offset + length else { return nil }
        self.payload = Array(bytes[offset...])
    }
}

@Suite("WebSocketEncoding")
struct WebSocketEncodingTests {
    @Test(
        "header lengths at the boundaries of the 7-bit, 16-bit and 64-bit forms",
        arguments: [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65_535, 4), (65_536, 10), (1 << 20, 10)]
    )
    func headerLength(_ payload: Int, _ expected: Int) {
        #expect(WebSocketEncoding.headerLength(payload: payload) == expected)
    }

    @Test(
        "header bytes at the boundaries (FIN, opcode, no MASK bit, length in network byte order)",
        arguments: [
            (0, [0x82, 0x00]),
            (125, [0x82, 0x7D]),
            (126, [0x82, 0x7E, 0x00, 0x7E]),
            (127, [0x82, 0x7E, 0x00, 0x7F]),
            (256, [0x82, 0x7E, 0x01, 0x00]),
            (65_535, [0x82, 0x7E, 0xFF, 0xFF]),
            (65_536, [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]),
            (0x0102_0304, [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04]),
        ] as [(Int, [UInt8])]
    )
    func headerBytes(_ length: Int, _ expected: [UInt8]) {
        var buffer = ByteBuffer()
        WebSocketEncoding.writeHeader(.binary, payloadLength: length, into: &buffer)
        #expect(bytes(buffer) == expected)
        #expect(buffer.readableBytes == WebSocketEncoding.headerLength(payload: length))
    }

    @Test(
        "the first header byte is FIN and the opcode",
        arguments: [
            (WebSocketEncoding.Opcode.continuation, 0x80), (.text, 0x81), (.binary, 0x82), (.close, 0x88), (.ping, 0x89), (.pong, 0x8A),
        ] as [(WebSocketEncoding.Opcode, UInt8)]
    )
    func firstByte(_ opcode: WebSocketEncoding.Opcode, _ expected: UInt8) {
        var buffer = ByteBuffer()
        WebSocketEncoding.writeHeader(opcode, payloadLength: 3, into: &buffer)
        #expect(bytes(buffer) == [expected, 0x03])
    }

    @Test("close, ping and pong are control frames; the others are not")
    func isControl() {
        #expect(WebSocketEncoding.Opcode.close.isControl)
        #expect(WebSocketEncoding.Opcode.ping.isControl)
        #expect(WebSocketEncoding.Opcode.pong.isControl)
        #expect(!WebSocketEncoding.Opcode.continuation.isControl)
        #expect(!WebSocketEncoding.Opcode.text.isControl)
        #expect(!WebSocketEncoding.Opcode.binary.isControl)
    }

    @Test("a complete frame is the header and the payload", arguments: [0, 5, 125, 126, 65_535, 65_536, 100_000])
    func frame(_ count: Int) throws {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) }
        var input = ByteBuffer()
        input.writeBytes(payload)
        let output = bytes(WebSocketEncoding.frame(.binary, payload: input))
        let frame = try #require(ServerFrame(output))
        #expect(frame == ServerFrame(fin: true, rsv: 0, opcode: 0x2, payload: payload))
    }

    @Test("only the readable bytes of the payload are framed")
    func frameOfSlice() {
        var input = ByteBuffer(string: "skipped|kept")
        input.moveReaderIndex(forwardBy: 8)
        #expect(bytes(WebSocketEncoding.frame(.text, payload: input)) == [0x81, 0x04] + Array("kept".utf8))
    }

    @Test("a text frame holds the UTF-8 of its text")
    func textFrame() throws {
        // RFC 6455 section 5.7: a single-frame unmasked text message "Hello".
        #expect(bytes(WebSocketEncoding.text("Hello")) == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        let text = String(repeating: "é😀", count: 30)  // 180 bytes: the 16-bit form
        let frame = try #require(ServerFrame(bytes(WebSocketEncoding.text(text))))
        #expect(frame.opcode == 0x1 && frame.fin)
        #expect(frame.payload == Array(text.utf8))
        #expect(bytes(WebSocketEncoding.text("")) == [0x81, 0x00])
    }

    @Test("the ping frame is an empty final ping: 0x89 0x00")
    func ping() {
        #expect(bytes(WebSocketEncoding.ping) == [0x89, 0x00])
    }

    @Test("a close frame holds the code in network byte order, then the reason")
    func close() {
        #expect(bytes(WebSocketEncoding.close(code: 1000, reason: "")) == [0x88, 0x02, 0x03, 0xE8])
        #expect(bytes(WebSocketEncoding.close(code: 1009, reason: "too big")) == [0x88, 0x09, 0x03, 0xF1] + Array("too big".utf8))
        #expect(bytes(WebSocketEncoding.close(code: 4999, reason: "x")) == [0x88, 0x03, 0x13, 0x87, 0x78])
    }

    @Test("a close reason of 123 bytes is kept whole; a longer one is cut to 123 bytes (control frames carry 125)")
    func closeReasonASCII() throws {
        let exact = String(repeating: "a", count: 123)
        let exactFrame = bytes(WebSocketEncoding.close(code: 1001, reason: exact))
        #expect(Array(exactFrame.prefix(4)) == [0x88, 0x7D, 0x03, 0xE9])
        #expect(Array(exactFrame.dropFirst(4)) == Array(exact.utf8))

        let long = String(repeating: "0123456789", count: 30)
        let frame = try #require(ServerFrame(bytes(WebSocketEncoding.close(code: 1001, reason: long))))
        #expect(frame.opcode == 0x8)
        #expect(frame.payload.count == 125)
        #expect(Array(frame.payload.dropFirst(2)) == Array(long.utf8.prefix(123)))
    }

    @Test(
        "a long close reason is cut on a character boundary, keeping as many whole characters as fit in 123 bytes",
        arguments: [
            // (repeated character, its UTF-8 byte count, characters that fit in 123 bytes)
            ("é", 2, 61),  // 122 bytes
            ("€", 3, 41),  // 123 bytes
            ("😀", 4, 30),  // 120 bytes
        ] as [(String, Int, Int)]
    )
    func closeReasonMultibyte(_ character: String, _ width: Int, _ fitting: Int) throws {
        #expect(character.utf8.count == width)
        let reason = String(repeating: character, count: 100)
        let frame = try #require(ServerFrame(bytes(WebSocketEncoding.close(code: 1000, reason: reason))))
        let kept = Array(frame.payload.dropFirst(2))
        #expect(kept.count == fitting * width)
        #expect(kept.count <= 123)
        #expect(String(validating: kept, as: UTF8.self) == String(repeating: character, count: fitting))
    }

    @Test("a cut after mixed-width text is still valid UTF-8 and a prefix of the reason")
    func closeReasonMixed() throws {
        let reason = "a" + String(repeating: "€", count: 50)  // 1 + 150 bytes: 1 + 40 * 3 = 121 fits, one more is 124
        let frame = try #require(ServerFrame(bytes(WebSocketEncoding.close(code: 1000, reason: reason))))
        let kept = Array(frame.payload.dropFirst(2))
        #expect(kept.count == 121)
        #expect(String(validating: kept, as: UTF8.self) == "a" + String(repeating: "€", count: 40))
    }
}

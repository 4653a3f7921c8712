import CometCore
import NIOCore
import Testing

// Unit tests for `WebSocketFrameParser` (RFC 6455, section 5). Client frames are built by hand below from the
// section 5.2 layout (and the helper is checked against the section 5.7 example bytes); every expected event and
// close code is written from the RFC, never computed by the parser.

// MARK: - Building client frames

/// The masking key of RFC 6455 section 5.7's examples.
private let rfcMask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

private enum Opcode: UInt8 {
    case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
}

/// How the payload length is written: the 7-bit field alone, or 126 / 127 and a 16-bit / 64-bit length.
private enum LengthForm {
    case seven, sixteen, sixtyFour

    static func minimal(_ count: Int) -> LengthForm {
        count < 126 ? .seven : (count <= 0xFFFF ? .sixteen : .sixtyFour)
    }
}

/// The first bytes of a client frame header, up to and including the extended payload length (no masking key).
private func headerBytes(firstByte: UInt8, masked: Bool = true, length: UInt64, form: LengthForm) -> [UInt8] {
    let maskBit: UInt8 = masked ? 0x80 : 0
    switch form {
    case .seven:
        return [firstByte, maskBit | UInt8(length)]
    case .sixteen:
        return [firstByte, maskBit | 126, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    case .sixtyFour:
        return [firstByte, maskBit | 127] + stride(from: 56, through: 0, by: -8).map { UInt8(truncatingIfNeeded: length >> UInt64($0)) }
    }
}

/// A complete client frame (RFC 6455 section 5.2): masked with `mask` (section 5.3) unless `mask` is nil.
private func clientFrame(
    _ opcode: UInt8,
    _ payload: [UInt8],
    fin: Bool = true,
    rsv: UInt8 = 0,
    mask: [UInt8]? = rfcMask,
    form: LengthForm? = nil
) -> [UInt8] {
    let first = (fin ? 0x80 : 0) | (rsv << 4) | opcode
    var frame = headerBytes(firstByte: first, masked: mask != nil, length: UInt64(payload.count), form: form ?? .minimal(payload.count))
    if let mask {
        frame += mask
        frame += payload.enumerated().map { index, byte in byte ^ mask[index % 4] }
    } else {
        frame += payload
    }
    return frame
}

private func clientFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = rfcMask, form: LengthForm? = nil) -> [UInt8] {
    clientFrame(opcode.rawValue, payload, fin: fin, mask: mask, form: form)
}

private func clientFrame(_ opcode: Opcode, _ text: String, fin: Bool = true, mask: [UInt8]? = rfcMask) -> [UInt8] {
    clientFrame(opcode.rawValue, Array(text.utf8), fin: fin, mask: mask)
}

/// A close frame payload: the code in network byte order, then the reason bytes.
private func closePayload(_ code: UInt16, _ reason: [UInt8] = []) -> [UInt8] {
    [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
}

private func buffer(_ bytes: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeBytes(bytes)
    return buffer
}

private func buffer(_ text: String) -> ByteBuffer {
    ByteBuffer(string: text)
}

// MARK: - Feeding the parser

private let roomyLimits = WebSocketFrameParser.Limits(maxFrameBytes: 1 << 20, maxMessageBytes: 1 << 20, maxFragments: 16)

/// What a parser made of some bytes: the events, then the error that stopped it (if any).
private struct Outcome: Equatable, CustomStringConvertible {
    var events: [WebSocketFrameParser.Event] = []
    /// The close code of the error that stopped the parser.
    var closeCode: UInt16?

    var description: String { "events \(self.events), close code \(self.closeCode.map(String.init) ?? "none")" }
}

/// Feeds bytes to a parser piece by piece, collecting every event, as a connection handler does.
private struct Feeder {
    var parser: WebSocketFrameParser
    var buffer = ByteBuffer()
    var outcome = Outcome()
    var error: WebSocketFrameParser.ProtocolError?
    /// The most bytes the buffer held after the parser read what it could.
    var mostBuffered = 0

    init(limits: WebSocketFrameParser.Limits = roomyLimits) {
        self.parser = WebSocketFrameParser(limits: limits)
    }

    mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard self.error == nil else { return }
        self.buffer.writeBytes(bytes)
        do {
            while let event = try self.parser.next(&self.buffer) {
                self.outcome.events.append(event)
            }
        } catch let error as WebSocketFrameParser.ProtocolError {
            self.error = error
            self.outcome.closeCode = error.closeCode
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
        self.mostBuffered = max(self.mostBuffered, self.buffer.readableBytes)
    }
}

private func parse(_ bytes: [UInt8], limits: WebSocketFrameParser.Limits = roomyLimits) -> Outcome {
    var feeder = Feeder(limits: limits)
    feeder.feed(bytes)
    return feeder.outcome
}

private func parseByteByByte(_ bytes: [UInt8], limits: WebSocketFrameParser.Limits = roomyLimits) -> Outcome {
    var feeder = Feeder(limits: limits)
    for byte in bytes { feeder.feed(CollectionOfOne(byte)) }
    return feeder.outcome
}

private func parse(_ bytes: [UInt8], splitAt split: Int, limits: WebSocketFrameParser.Limits = roomyLimits) -> Outcome {
    var feeder = Feeder(limits: limits)
    feeder.feed(bytes[..<split])
    feeder.feed(bytes[split...])
    return feeder.outcome
}

/// The error the parser throws for `bytes` fed in one piece (nil, and an issue, when it throws nothing).
private func rejection(
    _ bytes: [UInt8],
    limits: WebSocketFrameParser.Limits = roomyLimits,
    sourceLocation: SourceLocation = #_sourceLocation
) -> WebSocketFrameParser.ProtocolError? {
    var feeder = Feeder(limits: limits)
    feeder.feed(bytes)
    guard let error = feeder.error else {
        Issue.record("expected a protocol error, got \(feeder.outcome.events)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(!error.reason.isEmpty, "a protocol error needs a reason", sourceLocation: sourceLocation)
    return error
}

// MARK: - Tests

@Suite("WebSocketFrameParser")
struct WebSocketFrameParserTests {
    // MARK: Well-formed frames

    @Test("the frame helper reproduces RFC 6455 section 5.7's masked \"Hello\", which parses to that text")
    func rfcMaskedHello() throws {
        let rfc: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(clientFrame(.text, "Hello") == rfc)
        #expect(parse(rfc) == Outcome(events: [.text("Hello")]))
    }

    @Test("RFC 6455 section 5.7's masked pong parses to a pong")
    func rfcMaskedPong() {
        let rfc: [UInt8] = [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(parse(rfc) == Outcome(events: [.pong]))
    }

    @Test(
        "masked text and binary frames unmask with any key",
        arguments: [[0x00, 0x00, 0x00, 0x00], [0xFF, 0xFF, 0xFF, 0xFF], [0x01, 0x02, 0x03, 0x04], [0xA5, 0x5A, 0x00, 0xFF]] as [[UInt8]]
    )
    func maskedDataFrames(_ mask: [UInt8]) {
        let text = "héllo wörld, 😀 中文 \u{0} end"
        let binary: [UInt8] = (0...255).map { UInt8($0) } + [0x00, 0xFF, 0x80]
        #expect(parse(clientFrame(.text, text, mask: mask)) == Outcome(events: [.text(text)]))
        #expect(parse(clientFrame(.binary, binary, mask: mask)) == Outcome(events: [.binary(buffer(binary))]))
        // Binary frames carry any bytes, UTF-8 or not.
        #expect(parse(clientFrame(.binary, [0xC3, 0x28, 0xFF], mask: mask)) == Outcome(events: [.binary(buffer([0xC3, 0x28, 0xFF]))]))
    }

    @Test("empty text and binary messages")
    func emptyMessages() {
        #expect(parse(clientFrame(.text, [])) == Outcome(events: [.text("")]))
        #expect(parse(clientFrame(.binary, [])) == Outcome(events: [.binary(ByteBuffer())]))
    }

    @Test(
        "payload lengths in the 7-bit, 16-bit and 64-bit forms",
        arguments: [(0, LengthForm.seven), (1, .seven), (125, .seven), (126, .sixteen), (127, .sixteen), (65_535, .sixteen), (65_536, .sixtyFour), (70_000, .sixtyFour)]
    )
    fileprivate func lengths(_ count: Int, _ form: LengthForm) throws {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let frame = clientFrame(.binary, payload)
        // The helper's header, per section 5.2: MASK bit and 7-bit length, then the extended length if any.
        switch form {
        case .seven: #expect(frame[1] == 0x80 | UInt8(count))
        case .sixteen: #expect(Array(frame[1..<4]) == [0xFE, UInt8(count >> 8), UInt8(count & 0xFF)])
        case .sixtyFour: #expect(Array(frame[1..<10]) == [0xFF, 0, 0, 0, 0, 0, UInt8(count >> 16), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)])
        }
        var parser = WebSocketFrameParser(limits: roomyLimits)
        var input = buffer(frame)
        #expect(try parser.next(&input) == .binary(buffer(payload)))
        #expect(input.readableBytes == 0, "the whole frame is consumed")
        #expect(try parser.next(&input) == nil)
        // Text in the same lengths (ASCII, so any length is valid UTF-8).
        let text = String(repeating: "t", count: count)
        #expect(parse(clientFrame(.text, text)) == Outcome(events: [.text(text)]))
    }

    @Test("a frame larger than its length form needs is accepted (the length is what counts)")
    func nonMinimalLengthForms() {
        // Section 5.2 asks senders for the minimal form; reading a longer form loses nothing.
        #expect(parse(clientFrame(.text, Array("Hi".utf8), form: .sixteen)) == Outcome(events: [.text("Hi")]))
        #expect(parse(clientFrame(.text, Array("Hi".utf8), form: .sixtyFour)) == Outcome(events: [.text("Hi")]))
    }

    @Test("an incomplete frame yields nothing and stays in the buffer until its last byte arrives")
    func incompleteFrame() throws {
        let frame = clientFrame(.text, "Hello")
        var parser = WebSocketFrameParser(limits: roomyLimits)
        var input = ByteBuffer()
        for (index, byte) in frame.enumerated() {
            input.writeInteger(byte)
            let event = try parser.next(&input)
            if index < frame.count - 1 {
                #expect(event == nil, "nothing before the last byte (\(index + 1) of \(frame.count))")
                #expect(input.readableBytes == index + 1, "nothing consumed from an incomplete frame")
            } else {
                #expect(event == .text("Hello"))
                #expect(input.readableBytes == 0)
            }
        }
    }

    @Test("control frames: ping with and without payload, pong, and a 125-byte ping")
    func controlFrames() {
        #expect(parse(clientFrame(.ping, [])) == Outcome(events: [.ping(ByteBuffer())]))
        #expect(parse(clientFrame(.ping, "are you there")) == Outcome(events: [.ping(buffer("are you there"))]))
        #expect(parse(clientFrame(.pong, "whatever")) == Outcome(events: [.pong]))
        #expect(parse(clientFrame(.pong, [])) == Outcome(events: [.pong]))
        let longest = [UInt8](repeating: 0xAB, count: 125)
        #expect(parse(clientFrame(.ping, longest)) == Outcome(events: [.ping(buffer(longest))]))
    }

    // MARK: Streams of frames and split points

    /// Several frames of every kind, one message fragmented around control frames, and what they mean.
    static let stream: (bytes: [UInt8], events: [WebSocketFrameParser.Event]) = {
        let binary = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        let bytes = clientFrame(.text, "Hello")
            + clientFrame(.ping, "p1", mask: [0x11, 0x22, 0x33, 0x44])
            + clientFrame(.binary, binary, mask: [0xDE, 0xAD, 0xBE, 0xEF])
            + clientFrame(.text, "frag", fin: false)
            + clientFrame(.pong, "", mask: [0x01, 0x01, 0x01, 0x01])
            + clientFrame(.continuation, "mented ", fin: false)
            + clientFrame(.ping, "p2")
            + clientFrame(.continuation, "tëxt", fin: true)
            + clientFrame(.binary, [], mask: [0x00, 0x00, 0x00, 0x01])
            + clientFrame(.close, closePayload(1000, Array("bye".utf8)))
        let events: [WebSocketFrameParser.Event] = [
            .text("Hello"),
            .ping(buffer("p1")),
            .binary(buffer(binary)),
            .pong,
            .ping(buffer("p2")),
            .text("fragmented tëxt"),
            .binary(ByteBuffer()),
            .close(code: 1000, reason: "bye"),
        ]
        return (bytes, events)
    }()

    @Test("a stream of frames in one piece")
    func streamInOnePiece() {
        #expect(parse(Self.stream.bytes) == Outcome(events: Self.stream.events))
    }

    @Test("a stream of frames byte by byte gives the same events, and the buffer never holds more than one frame")
    func streamByteByByte() {
        var feeder = Feeder()
        for byte in Self.stream.bytes { feeder.feed(CollectionOfOne(byte)) }
        #expect(feeder.outcome == Outcome(events: Self.stream.events))
        #expect(feeder.buffer.readableBytes == 0)
        // The largest frame of the stream is the 300-byte binary one: 2 + 2 + 4 + 300 bytes.
        #expect(feeder.mostBuffered < 308)
    }

    @Test("a stream of frames split at every point gives the same events")
    func streamAtEverySplitPoint() {
        let bytes = Self.stream.bytes
        let expected = Outcome(events: Self.stream.events)
        var failures: [Int] = []
        for split in 0...bytes.count where parse(bytes, splitAt: split) != expected {
            failures.append(split)
        }
        #expect(failures.isEmpty, "split points that changed the events: \(failures.prefix(20))")
        #expect(parseByteByByte(bytes) == expected)
    }

    // MARK: Fragmentation

    @Test("a fragmented text message with a ping and a pong in between (section 5.4 allows control frames there)")
    func fragmentedTextWithInterleavedControlFrames() {
        let bytes = clientFrame(.text, "Hel", fin: false)
            + clientFrame(.ping, "ping")
            + clientFrame(.continuation, "lo, ", fin: false)
            + clientFrame(.pong, "")
            + clientFrame(.continuation, "wörld", fin: true)
        // Control frames are answered as they come, before the message they interrupt is complete.
        #expect(parse(bytes) == Outcome(events: [.ping(buffer("ping")), .pong, .text("Hello, wörld")]))
        #expect(parseByteByByte(bytes) == Outcome(events: [.ping(buffer("ping")), .pong, .text("Hello, wörld")]))
    }

    @Test("a character split between fragments is valid: UTF-8 is checked on the whole message")
    func characterSplitAcrossFragments() {
        let euro = Array("€".utf8)  // E2 82 AC
        #expect(euro == [0xE2, 0x82, 0xAC])
        let bytes = clientFrame(.text, [0x61, 0xE2], fin: false)
            + clientFrame(.continuation, [0x82], fin: false)
            + clientFrame(.continuation, [0xAC, 0x62], fin: true)
        #expect(parse(bytes) == Outcome(events: [.text("a€b")]))
    }

    @Test("a fragmented binary message, with empty fragments")
    func fragmentedBinary() {
        let bytes = clientFrame(.binary, [1, 2], fin: false)
            + clientFrame(.continuation, [], fin: false)
            + clientFrame(.continuation, [3], fin: false)
            + clientFrame(.continuation, [], fin: true)
        #expect(parse(bytes) == Outcome(events: [.binary(buffer([1, 2, 3]))]))
    }

    @Test("after a fragmented message, the next message starts afresh")
    func messageAfterFragmentedMessage() {
        let bytes = clientFrame(.text, "a", fin: false)
            + clientFrame(.continuation, "b", fin: true)
            + clientFrame(.binary, [9], fin: false)
            + clientFrame(.continuation, [8], fin: true)
            + clientFrame(.text, "c")
        #expect(parse(bytes) == Outcome(events: [.text("ab"), .binary(buffer([9, 8])), .text("c")]))
        // And a continuation after the finished message has nothing to continue.
        #expect(parse(bytes + clientFrame(.continuation, "d")) == Outcome(events: [.text("ab"), .binary(buffer([9, 8])), .text("c")], closeCode: 1002))
    }

    // MARK: Protocol errors (1002)

    @Test("an unmasked client frame is a protocol error, known from its first two bytes")
    func unmasked() {
        #expect(rejection(clientFrame(.text, "Hello", mask: nil))?.closeCode == 1002)
        #expect(rejection(clientFrame(.ping, [], mask: nil))?.closeCode == 1002)
        #expect(rejection(clientFrame(.close, [], mask: nil))?.closeCode == 1002)
        // The header alone is enough: no need to wait for a payload.
        #expect(rejection([0x81, 0x05])?.closeCode == 1002)
        #expect(rejection([0x82, 0x7F])?.closeCode == 1002)
    }

    @Test("a reserved bit set (no extension was negotiated) is a protocol error", arguments: [0b100, 0b010, 0b001, 0b111] as [UInt8])
    func reservedBits(_ rsv: UInt8) {
        #expect(rejection(clientFrame(Opcode.text.rawValue, Array("x".utf8), rsv: rsv))?.closeCode == 1002)
        #expect(rejection(clientFrame(Opcode.ping.rawValue, [], rsv: rsv))?.closeCode == 1002)
    }

    @Test("a reserved opcode is a protocol error", arguments: [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] as [UInt8])
    func reservedOpcodes(_ opcode: UInt8) {
        #expect(rejection(clientFrame(opcode, []))?.closeCode == 1002)
        #expect(rejection(clientFrame(opcode, Array("payload".utf8)))?.closeCode == 1002)
    }

    @Test("a fragmented control frame is a protocol error", arguments: [Opcode.ping, .pong, .close])
    fileprivate func fragmentedControlFrame(_ opcode: Opcode) {
        #expect(rejection(clientFrame(opcode, [], fin: false))?.closeCode == 1002)
        // Also in the middle of a fragmented data message.
        #expect(rejection(clientFrame(.text, "a", fin: false) + clientFrame(opcode, [], fin: false))?.closeCode == 1002)
    }

    @Test("a control frame payload over 125 bytes is a protocol error, known from its header", arguments: [Opcode.ping, .pong, .close])
    fileprivate func oversizedControlFrame(_ opcode: Opcode) {
        var payload = closePayload(1000) + [UInt8](repeating: 0x61, count: 124)
        #expect(payload.count == 126)
        #expect(rejection(clientFrame(opcode, payload))?.closeCode == 1002)
        payload = [UInt8](repeating: 0x61, count: 70_000)
        #expect(rejection(clientFrame(opcode, payload))?.closeCode == 1002)
        // The 16-bit length says it all: the masking key and the payload are not needed.
        #expect(rejection(headerBytes(firstByte: 0x80 | opcode.rawValue, length: 126, form: .sixteen))?.closeCode == 1002)
    }

    @Test("a 64-bit length with its most significant bit set is a protocol error, known from the header")
    func lengthWithMostSignificantBit() {
        let header = headerBytes(firstByte: 0x82, length: 1 << 63, form: .sixtyFour)
        #expect(header == [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0])
        #expect(rejection(header)?.closeCode == 1002)
        #expect(rejection(headerBytes(firstByte: 0x82, length: .max, form: .sixtyFour))?.closeCode == 1002)
        // Even when the limits would allow any length.
        let unlimited = WebSocketFrameParser.Limits(maxFrameBytes: .max, maxMessageBytes: .max, maxFragments: .max)
        #expect(rejection(header, limits: unlimited)?.closeCode == 1002)
    }

    @Test("a continuation frame without a message to continue is a protocol error")
    func continuationWithoutStart() {
        #expect(rejection(clientFrame(.continuation, "x", fin: true))?.closeCode == 1002)
        #expect(rejection(clientFrame(.continuation, "x", fin: false))?.closeCode == 1002)
        #expect(rejection(clientFrame(.text, "done") + clientFrame(.continuation, "more"))?.closeCode == 1002)
    }

    @Test(
        "a new data frame inside a fragmented message is a protocol error",
        arguments: [(Opcode.text, Opcode.text), (.text, .binary), (.binary, .text), (.binary, .binary)]
    )
    fileprivate func dataFrameInsideFragmentedMessage(_ first: Opcode, _ second: Opcode) {
        #expect(rejection(clientFrame(first, [0x61], fin: false) + clientFrame(second, [0x62], fin: true))?.closeCode == 1002)
        #expect(rejection(clientFrame(first, [0x61], fin: false) + clientFrame(second, [0x62], fin: false))?.closeCode == 1002)
        // With a control frame between, the message is still open.
        let outcome = parse(clientFrame(first, [0x61], fin: false) + clientFrame(.ping, []) + clientFrame(second, [0x62]))
        #expect(outcome == Outcome(events: [.ping(ByteBuffer())], closeCode: 1002))
    }

    // MARK: Limits (1009)

    @Test("a frame over maxFrameBytes is refused from its header alone, before any payload byte arrives")
    func frameTooLargeFromHeader() {
        let limits = WebSocketFrameParser.Limits(maxFrameBytes: 100, maxMessageBytes: 1000, maxFragments: 16)
        // 7-bit length: two bytes.
        #expect(rejection([0x82, 0x80 | 101], limits: limits)?.closeCode == 1009)
        #expect(rejection([0x81, 0x80 | 11], limits: WebSocketFrameParser.Limits(maxFrameBytes: 10, maxMessageBytes: 1000, maxFragments: 16))?.closeCode == 1009)
        // 16-bit length: four bytes.
        #expect(rejection(headerBytes(firstByte: 0x82, length: 101, form: .sixteen), limits: limits)?.closeCode == 1009)
        #expect(rejection(headerBytes(firstByte: 0x81, length: 65_535, form: .sixteen), limits: limits)?.closeCode == 1009)
        // 64-bit length: ten bytes; a hostile client announcing an enormous frame makes us buffer nothing.
        for length: UInt64 in [101, 1 << 32, (1 << 63) - 1] {
            #expect(rejection(headerBytes(firstByte: 0x82, length: length, form: .sixtyFour), limits: limits)?.closeCode == 1009)
        }
        // A continuation frame too.
        let fragmentStart = clientFrame(.binary, [1], fin: false)
        #expect(rejection(fragmentStart + headerBytes(firstByte: 0x00, length: 101, form: .sixteen), limits: limits)?.closeCode == 1009)
    }

    @Test("a frame of exactly maxFrameBytes is accepted; one more byte is refused")
    func frameAtTheLimit() {
        let limits = WebSocketFrameParser.Limits(maxFrameBytes: 200, maxMessageBytes: 1000, maxFragments: 16)
        let payload = [UInt8](repeating: 0x7A, count: 200)
        #expect(parse(clientFrame(.binary, payload), limits: limits) == Outcome(events: [.binary(buffer(payload))]))
        #expect(parse(clientFrame(.binary, payload + [0x7A]), limits: limits) == Outcome(closeCode: 1009))
    }

    @Test("a partial extended length waits for more bytes, even when it will announce an enormous frame")
    func partialExtendedLength() throws {
        let limits = WebSocketFrameParser.Limits(maxFrameBytes: 100, maxMessageBytes: 1000, maxFragments: 16)
        let header = headerBytes(firstByte: 0x82, length: (1 << 63) - 1, form: .sixtyFour)
        var parser = WebSocketFrameParser(limits: limits)
        var input = ByteBuffer()
        for byte in header.dropLast() {
            input.writeInteger(byte)
            #expect(try parser.next(&input) == nil)
        }
        input.writeInteger(header.last!)
        #expect(throws: WebSocketFrameParser.ProtocolError.self) { try parser.next(&input) }
    }

    @Test("an enormous announced length with unbounded limits waits for more bytes instead of trapping")
    func enormousLengthWithUnboundedLimits() async {
        // Limits of Int.max are not reachable from the configuration file (16 MiB at most), but the type allows them.
        await #expect(processExitsWith: .success) {
            var parser = WebSocketFrameParser(limits: .init(maxFrameBytes: .max, maxMessageBytes: .max, maxFragments: 16))
            var input = ByteBuffer()
            input.writeBytes([0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] as [UInt8])
            input.writeBytes(rfcMask)
            _ = try? parser.next(&input)
        }
    }

    @Test("a fragmented message over maxMessageBytes is refused")
    func messageTooLarge() {
        let limits = WebSocketFrameParser.Limits(maxFrameBytes: 100, maxMessageBytes: 10, maxFragments: 16)
        // 6 + 4 = 10 bytes: at the limit.
        let atLimit = clientFrame(.text, "aaaaaa", fin: false) + clientFrame(.continuation, "bbbb", fin: true)
        #expect(parse(atLimit, limits: limits) == Outcome(events: [.text("aaaaaabbbb")]))
        // 6 + 5 = 11 bytes.
        let over = clientFrame(.text, "aaaaaa", fin: false) + clientFrame(.continuation, "bbbbb", fin: true)
        #expect(parse(over, limits: limits) == Outcome(closeCode: 1009))
        // Over the limit in a middle fragment: refused without waiting for the last one.
        let overEarly = clientFrame(.binary, [UInt8](repeating: 1, count: 8), fin: false) + clientFrame(.continuation, [1, 2, 3], fin: false)
        #expect(parse(overEarly, limits: limits) == Outcome(closeCode: 1009))
        // One unfragmented frame over the message limit (but within the frame limit).
        #expect(parse(clientFrame(.text, "12345678901"), limits: limits) == Outcome(closeCode: 1009))
        #expect(parse(clientFrame(.text, "1234567890"), limits: limits) == Outcome(events: [.text("1234567890")]))
        // The first fragment alone over the limit.
        #expect(parse(clientFrame(.binary, [UInt8](repeating: 1, count: 11), fin: false), limits: limits) == Outcome(closeCode: 1009))
    }

    @Test("control frames in a fragmented message do not count towards its size or its fragments")
    func controlFramesDoNotCount() {
        let limits = WebSocketFrameParser.Limits(maxFrameBytes: 125, maxMessageBytes: 4, maxFragments: 2)
        let bytes = clientFrame(.text, "ab", fin: false)
            + clientFrame(.ping, [UInt8](repeating: 0x70, count: 100))
            + clientFrame(.pong, [UInt8](repeating: 0x70, count: 100))
            + clientFrame(.continuation, "cd", fin: true)
        let ping = [UInt8](repeating: 0x70, count: 100)
        #expect(parse(bytes, limits: limits) == Outcome(events: [.ping(buffer(ping)), .pong, .text("abcd")]))
    }

    @Test("a message in more than maxFragments frames is refused, empty fragments included")
    func tooManyFragments() {
        let limits = WebSocketFrameParser.Limits(maxFrameBytes: 100, maxMessageBytes: 100, maxFragments: 3)
        let three = clientFrame(.text, "a", fin: false) + clientFrame(.continuation, "b", fin: false) + clientFrame(.continuation, "c", fin: true)
        #expect(parse(three, limits: limits) == Outcome(events: [.text("abc")]))
        let four = clientFrame(.text, "a", fin: false) + clientFrame(.continuation, "b", fin: false)
            + clientFrame(.continuation, "c", fin: false) + clientFrame(.continuation, "d", fin: true)
        #expect(parse(four, limits: limits) == Outcome(closeCode: 1009))
        // A stream of empty continuations (no bytes, so the size limit never trips) is still bounded.
        var endless = clientFrame(.binary, [], fin: false)
        for _ in 0..<10 { endless += clientFrame(.continuation, [], fin: false) }
        #expect(parse(endless, limits: limits) == Outcome(closeCode: 1009))
        // maxFragments 1: no fragmentation at all.
        let single = WebSocketFrameParser.Limits(maxFrameBytes: 100, maxMessageBytes: 100, maxFragments: 1)
        #expect(parse(clientFrame(.text, "whole"), limits: single) == Outcome(events: [.text("whole")]))
        #expect(parse(clientFrame(.text, "a", fin: false) + clientFrame(.continuation, "b"), limits: single) == Outcome(closeCode: 1009))
    }

    // MARK: Invalid data (1007)

    @Test(
        "text that is not UTF-8 is invalid data",
        arguments: [
            [0xFF], [0xC3, 0x28], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xE2, 0x82], [0x61, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x68, 0x69, 0xFE],
        ] as [[UInt8]]
    )
    func invalidUTF8(_ payload: [UInt8]) {
        #expect(rejection(clientFrame(.text, payload))?.closeCode == 1007)
        // Also when the bad byte arrives in a continuation frame.
        #expect(rejection(clientFrame(.text, [0x61], fin: false) + clientFrame(.continuation, payload))?.closeCode == 1007)
    }

    @Test("a fragmented text message that ends in the middle of a character is invalid data")
    func truncatedCharacterAtMessageEnd() {
        let bytes = clientFrame(.text, [0x61, 0xE2], fin: false) + clientFrame(.continuation, [0x82], fin: true)
        #expect(rejection(bytes)?.closeCode == 1007)
    }

    // MARK: Close frames

    @Test("a close frame without a payload has no code and no reason")
    func emptyClose() {
        #expect(parse(clientFrame(.close, [])) == Outcome(events: [.close(code: nil, reason: "")]))
    }

    @Test("a close frame with a code, with and without a reason")
    func closeWithCodeAndReason() {
        #expect(parse(clientFrame(.close, [0x03, 0xE8])) == Outcome(events: [.close(code: 1000, reason: "")]))
        #expect(parse(clientFrame(.close, closePayload(1001, Array("going away".utf8)))) == Outcome(events: [.close(code: 1001, reason: "going away")]))
        #expect(parse(clientFrame(.close, closePayload(4321, Array("délai ⏰".utf8)))) == Outcome(events: [.close(code: 4321, reason: "délai ⏰")]))
        // A reason filling the 125-byte control frame.
        let reason = String(repeating: "r", count: 123)
        #expect(parse(clientFrame(.close, closePayload(1000, Array(reason.utf8)))) == Outcome(events: [.close(code: 1000, reason: reason)]))
    }

    @Test(
        "close codes a client may send (RFC 6455 section 7.4.1 and 7.4.2)",
        arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999] as [UInt16]
    )
    func validCloseCodes(_ code: UInt16) {
        #expect(parse(clientFrame(.close, closePayload(code))) == Outcome(events: [.close(code: code, reason: "")]))
    }

    @Test(
        "a close code a client must not send is a protocol error",
        arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65_535] as [UInt16]
    )
    func invalidCloseCodes(_ code: UInt16) {
        #expect(rejection(clientFrame(.close, closePayload(code)))?.closeCode == 1002)
        #expect(rejection(clientFrame(.close, closePayload(code, Array("reason".utf8))))?.closeCode == 1002)
    }

    @Test("a close frame with a one-byte payload is a protocol error")
    func oneByteClose() {
        #expect(rejection(clientFrame(.close, [0x03]))?.closeCode == 1002)
    }

    @Test("a close reason that is not UTF-8 is invalid data", arguments: [[0xFF], [0xC3, 0x28], [0x6F, 0x6B, 0xED, 0xA0, 0x80], [0xE2, 0x82]] as [[UInt8]])
    func closeReasonNotUTF8(_ reason: [UInt8]) {
        #expect(rejection(clientFrame(.close, closePayload(1000, reason)))?.closeCode == 1007)
    }
}

import CometCore
import CometTestSupport
import Foundation
import Synchronization
import Testing

// MARK: - A minimal WebSocket client (RFC 6455)

/// SHA-1 (FIPS 180-4), for the handshake's accept value only.
private func sha1(_ message: [UInt8]) -> [UInt8] {
    var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
    var data = message
    let bitLength = UInt64(message.count) * 8
    data.append(0x80)
    while data.count % 64 != 56 { data.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
    func rotate(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 - n)) }
    for block in stride(from: 0, to: data.count, by: 64) {
        var w = [UInt32](repeating: 0, count: 80)
        for i in 0..<16 {
            w[i] = UInt32(data[block + 4 * i]) << 24 | UInt32(data[block + 4 * i + 1]) << 16
                | UInt32(data[block + 4 * i + 2]) << 8 | UInt32(data[block + 4 * i + 3])
        }
        for i in 16..<80 { w[i] = rotate(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }
        var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
        for i in 0..<80 {
            let (f, k): (UInt32, UInt32) = switch i {
            case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
            case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
            case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            default: (b ^ c ^ d, 0xCA62_C1D6)
            }
            let temp = rotate(a, 5) &+ f &+ e &+ k &+ w[i]
            (e, d, c, b, a) = (d, c, rotate(b, 30), a, temp)
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e
    }
    return h.flatMap { word in stride(from: 24, through: 0, by: -8).map { UInt8(truncatingIfNeeded: word >> UInt32($0)) } }
}

/// The `Sec-WebSocket-Accept` value for `key` (RFC 6455, section 4.2.2).
private func acceptValue(for key: String) -> String {
    Data(sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
}

/// A frame the server sent.
private struct ServerFrame: CustomStringConvertible {
    var fin: Bool
    var opcode: UInt8
    var payload: [UInt8]

    var text: String { String(decoding: self.payload, as: UTF8.self) }
    var isText: Bool { self.opcode == 0x1 }
    var isClose: Bool { self.opcode == 0x8 }
    var isPing: Bool { self.opcode == 0x9 }
    var isPong: Bool { self.opcode == 0xA }
    /// A close frame's status code.
    var closeCode: UInt16? {
        guard self.isClose, self.payload.count >= 2 else { return nil }
        return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
    }
    /// A close frame's reason.
    var closeReason: String { String(decoding: self.payload.dropFirst(2), as: UTF8.self) }

    var description: String {
        self.isText ? "text \(self.text)" : self.isClose ? "close \(self.closeCode.map(String.init) ?? "-") \(self.closeReason)"
            : "opcode \(self.opcode) (\(self.payload.count) bytes)"
    }
}

/// A server frame that breaks RFC 6455.
private struct BadServerFrame: Error, CustomStringConvertible {
    var description: String
}

/// Parses the server's frames: unmasked, no reserved bits, known opcodes, control frames final and at most 125
/// bytes; a trailing incomplete frame is left out.
private func parseServerFrames(_ bytes: ArraySlice<UInt8>) throws -> [ServerFrame] {
    var frames: [ServerFrame] = []
    var index = bytes.startIndex
    while bytes.endIndex - index >= 2 {
        let first = bytes[index]
        let second = bytes[index + 1]
        guard first & 0x70 == 0 else { throw BadServerFrame(description: "reserved bits set") }
        let opcode = first & 0x0F
        guard [0x0, 0x1, 0x2, 0x8, 0x9, 0xA].contains(opcode) else { throw BadServerFrame(description: "opcode \(opcode)") }
        guard second & 0x80 == 0 else { throw BadServerFrame(description: "a masked server frame") }
        var length = Int(second & 0x7F)
        var headerLength = 2
        if length == 126 {
            guard bytes.endIndex - index >= 4 else { break }
            length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 126 else { throw BadServerFrame(description: "a 16-bit length below 126") }
            headerLength = 4
        } else if length == 127 {
            guard bytes.endIndex - index >= 10 else { break }
            length = bytes[(index + 2)..<(index + 10)].reduce(0) { $0 << 8 | Int($1) }
            guard length > 0xFFFF else { throw BadServerFrame(description: "a 64-bit length below 65536") }
            headerLength = 10
        }
        if opcode & 0x8 != 0 {
            guard first & 0x80 != 0, length <= 125 else { throw BadServerFrame(description: "a bad control frame") }
        }
        guard bytes.endIndex - index >= headerLength + length else { break }
        let start = index + headerLength
        frames.append(ServerFrame(fin: first & 0x80 != 0, opcode: opcode, payload: Array(bytes[start..<(start + length)])))
        index = start + length
    }
    return frames
}

/// How many complete text frames of at least `minimumLength` payload bytes `bytes` (a 101 response and frames) hold;
/// reads only the frame headers (cheap on long streams).
@Sendable private func countTextFrames(_ bytes: [UInt8], minimumLength: Int) -> Int {
    guard let (_, rest) = splitHTTPHead(bytes) else { return 0 }
    var count = 0
    var index = rest.startIndex
    while rest.endIndex - index >= 2 {
        var length = Int(rest[index + 1] & 0x7F)
        var headerLength = 2
        if length == 126 {
            guard rest.endIndex - index >= 4 else { break }
            length = Int(rest[index + 2]) << 8 | Int(rest[index + 3])
            headerLength = 4
        } else if length == 127 {
            guard rest.endIndex - index >= 10 else { break }
            length = rest[(index + 2)..<(index + 10)].reduce(0) { $0 << 8 | Int($1) }
            headerLength = 10
        }
        guard rest.endIndex - index >= headerLength + length else { break }
        if rest[index] & 0x0F == 0x1, length >= minimumLength { count += 1 }
        index += headerLength + length
    }
    return count
}

/// A client frame: masked (unless told otherwise) with a random key.
private func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true) -> [UInt8] {
    var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    let maskBit: UInt8 = masked ? 0x80 : 0
    if payload.count < 126 {
        frame.append(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        frame.append(maskBit | 126)
        frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    } else {
        frame.append(maskBit | 127)
        frame += stride(from: 56, through: 0, by: -8).map { UInt8(truncatingIfNeeded: payload.count >> $0) }
    }
    guard masked else { return frame + payload }
    let key = (0..<4).map { _ in UInt8.random(in: 0...255) }
    frame += key
    frame += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
    return frame
}

/// What a WebSocket connection received: the handshake's response head and the frames after it.
private struct Received {
    var head: String?
    var frames: [ServerFrame]
    var closed: Bool

    init(_ bytes: [UInt8], closed: Bool) throws {
        self.closed = closed
        guard let (head, rest) = splitHTTPHead(bytes) else {
            self.head = nil
            self.frames = []
            return
        }
        self.head = head
        self.frames = httpStatus(head) == 101 ? try parseServerFrames(rest) : []
    }

    /// The JSON objects of the text frames.
    func objects() throws -> [[String: Any]] {
        try self.frames.filter(\.isText).map { try jsonObject($0.text) }
    }

    /// The message objects (those with `data`).
    func messages() throws -> [[String: Any]] {
        try self.objects().filter { $0["data"] != nil }
    }
}

/// A WebSocket client over a raw socket.
private final class WebSocketClient: Sendable {
    let connection: LiveByteClient
    let key: String

    private init(connection: LiveByteClient, key: String) {
        self.connection = connection
        self.key = key
    }

    /// A random 16-byte key in base64.
    static func randomKey() -> String {
        Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    /// Sends an opening handshake for `path` and returns the client (the response is not awaited).
    /// - Parameters:
    ///   - host: The `Host` header (default: 127.0.0.1:PORT).
    ///   - extra: More header lines (`Origin: …`).
    ///   - version: `Sec-WebSocket-Version`.
    static func connect(_ live: LiveGateway, _ path: String, key: String = randomKey(), host: String? = nil,
                        version: String = "13", extra: [String] = [], receiveBuffer: Int? = nil) async throws -> WebSocketClient {
        let connection = try await LiveByteClient.connect(port: live.publicPort, receiveBuffer: receiveBuffer)
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(live.publicPort)")\r\nUpgrade: websocket\r\n"
        request += "Connection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: \(version)\r\n"
        for line in extra { request += line + "\r\n" }
        try await connection.send(request + "\r\n")
        return WebSocketClient(connection: connection, key: key)
    }

    /// Opens a socket on `path` and waits for the `subscribed` message of each of its `channels`.
    static func open(_ live: LiveGateway, _ path: String, channels: Int = 1, receiveBuffer: Int? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) async throws -> WebSocketClient {
        let client = try await connect(live, path, receiveBuffer: receiveBuffer)
        let subscribed = await client.waitFor { received in
            received.frames.filter { $0.isText && $0.text.hasPrefix("{\"type\":\"subscribed\"") }.count >= channels
        }
        #expect(subscribed, "not subscribed: \(client.connection.text)", sourceLocation: sourceLocation)
        return client
    }

    /// What arrived so far.
    func received() throws -> Received {
        try Received(self.connection.bytes, closed: self.connection.isClosed)
    }

    /// Waits until what arrived satisfies `predicate` (bounded).
    @discardableResult
    func waitFor(timeout: Duration = .seconds(10), _ predicate: @escaping @Sendable (Received) -> Bool) async -> Bool {
        await self.connection.wait(timeout: timeout) { bytes, closed in
            guard let received = try? Received(bytes, closed: closed) else { return false }
            return predicate(received)
        }
    }

    /// Waits for the handshake's response head.
    func head(sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        #expect(await self.waitFor { $0.head != nil }, "no response: \(self.connection.text)", sourceLocation: sourceLocation)
        return try #require(try self.received().head, sourceLocation: sourceLocation)
    }

    /// Waits until `count` message objects arrived; returns them.
    func messages(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [[String: Any]] {
        let arrived = await self.waitFor { ((try? $0.messages())?.count ?? 0) >= count }
        #expect(arrived, "fewer than \(count) messages: \(self.connection.text)", sourceLocation: sourceLocation)
        return try self.received().messages()
    }

    /// Waits until a text frame whose JSON has `type` arrived (the `count`-th of them); returns it.
    func control(_ type: String, count: Int = 1,
                 sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let arrived = await self.waitFor { received in
            ((try? received.objects())?.filter { $0["type"] as? String == type }.count ?? 0) >= count
        }
        #expect(arrived, "no \(type) message: \(self.connection.text)", sourceLocation: sourceLocation)
        let all = try self.received().objects().filter { $0["type"] as? String == type }
        return try #require(all.count >= count ? all[count - 1] : nil, sourceLocation: sourceLocation)
    }

    /// Waits until the server sent a close frame and closed the connection; returns the close frame.
    func closeFrame(sourceLocation: SourceLocation = #_sourceLocation) async throws -> ServerFrame {
        let closed = await self.waitFor { $0.closed && $0.frames.contains(where: \.isClose) }
        #expect(closed, "not closed with a close frame: \(self.connection.text)", sourceLocation: sourceLocation)
        let frames = try self.received().frames
        let close = try #require(frames.last { $0.isClose }, sourceLocation: sourceLocation)
        #expect(frames.last?.isClose == true, "frames after the close frame", sourceLocation: sourceLocation)
        return close
    }

    func send(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true) async throws {
        try await self.connection.send(bytes: clientFrame(opcode, payload, fin: fin, masked: masked))
    }

    func sendText(_ text: String) async throws {
        try await self.send(0x1, Array(text.utf8))
    }

    func close() async {
        await self.connection.close()
    }
}

/// Publishes each payload in turn (with libcurl); returns their ids.
private func publishAll(_ live: LiveGateway, _ channel: String, _ payloads: [String]) throws -> [String] {
    try payloads.map { try publish(live, channel, $0) }
}

/// A hostile frame and the close code it must get.
enum HostileFrame: String, CaseIterable, Sendable {
    case unmasked, oversized, endlessFragments, binary, invalidUTF8, flood
    case reservedBits, unknownOpcode, oversizedPing, fragmentedPing, strayContinuation, dataInsideFragments
    case fragmentsPastMessageLimit, invalidCloseCode, truncatedClosePayload, invalidCloseReason

    var closeCode: UInt16 {
        switch self {
        case .unmasked, .reservedBits, .unknownOpcode, .oversizedPing, .fragmentedPing, .strayContinuation,
             .dataInsideFragments, .invalidCloseCode, .truncatedClosePayload: 1002
        case .oversized, .endlessFragments, .fragmentsPastMessageLimit: 1009
        case .binary: 1003
        case .invalidUTF8, .invalidCloseReason: 1007
        case .flood: 1008
        }
    }

    /// The bytes a misbehaving client sends.
    var bytes: [UInt8] {
        switch self {
        case .unmasked:
            return clientFrame(0x1, Array("{\"type\":\"subscribe\",\"channel\":\"x\"}".utf8), masked: false)
        case .oversized:
            // Only a header announcing 2^40 bytes: refused before any payload arrives.
            let length = UInt64(1) << 40
            return [0x81, 0xFF] + stride(from: 56, through: 0, by: -8).map { UInt8(truncatingIfNeeded: length >> UInt64($0)) }
                + [1, 2, 3, 4]
        case .endlessFragments:
            var bytes = clientFrame(0x1, Array("{\"type\":".utf8), fin: false)
            for _ in 0..<40 { bytes += clientFrame(0x0, Array("  ".utf8), fin: false) }
            return bytes
        case .binary:
            return clientFrame(0x2, [0, 1, 2, 3])
        case .invalidUTF8:
            return clientFrame(0x1, [0x7B, 0xC3, 0x28, 0x7D])
        case .flood:
            return (0..<60).flatMap { clientFrame(0x9, Array("p\($0)".utf8)) }
        case .reservedBits:
            var frame = clientFrame(0x1, Array("{}".utf8))
            frame[0] |= 0x40
            return frame
        case .unknownOpcode:
            return clientFrame(0x3, [1])
        case .oversizedPing:
            return clientFrame(0x9, [UInt8](repeating: 0x70, count: 126))
        case .fragmentedPing:
            return clientFrame(0x9, Array("ping".utf8), fin: false)
        case .strayContinuation:
            return clientFrame(0x0, Array("more".utf8))
        case .dataInsideFragments:
            return clientFrame(0x1, Array("{\"type\"".utf8), fin: false) + clientFrame(0x1, Array("{}".utf8))
        case .fragmentsPastMessageLimit:
            // Four fragments of 5000 bytes: each frame within max_frame_bytes, the message past max_message_bytes.
            let piece = [UInt8](repeating: 0x20, count: 5000)
            return clientFrame(0x1, piece, fin: false) + clientFrame(0x0, piece, fin: false)
                + clientFrame(0x0, piece, fin: false) + clientFrame(0x0, piece, fin: true)
        case .invalidCloseCode:
            return clientFrame(0x8, [0x03, 0xED])  // 1005 must not be sent
        case .truncatedClosePayload:
            return clientFrame(0x8, [0x03])
        case .invalidCloseReason:
            return clientFrame(0x8, [0x03, 0xE8, 0xFF, 0xFE])
        }
    }
}

// MARK: - Tests

/// WebSocket subscribers (`Upgrade: websocket` on `/sub/…`): the handshake, control messages, limits, endings.
@Suite("Live WebSocket", .serialized)
struct LiveWebSocketTests {
    @Test("The handshake answers 101 with the RFC 6455 accept value, then a subscribed message")
    func handshake() async throws {
        #expect(acceptValue(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")  // RFC 6455, 1.3
        try await LiveGateway.withGateway { live in
            let rfc = try await WebSocketClient.connect(live, "/sub/hs", key: "dGhlIHNhbXBsZSBub25jZQ==")
            let head = try await rfc.head()
            #expect(head.hasPrefix("HTTP/1.1 101 "))
            #expect(headerValue(head, "Upgrade")?.lowercased() == "websocket")
            #expect(headerValue(head, "Connection")?.lowercased() == "upgrade")
            #expect(headerValue(head, "Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            #expect(headerValue(head, "Sec-WebSocket-Protocol") == nil)
            #expect(headerValue(head, "Sec-WebSocket-Extensions") == nil)
            let subscribed = try await rfc.control("subscribed")
            #expect(subscribed["channel"] as? String == "hs")
            #expect(subscribed["last_event_id"] is String)
            await rfc.close()

            let key = WebSocketClient.randomKey()
            let random = try await WebSocketClient.connect(live, "/sub/hs", key: key)
            #expect(headerValue(try await random.head(), "Sec-WebSocket-Accept") == acceptValue(for: key))
            await random.close()
        }
    }

    @Test("Published messages arrive as text frames, in order, each with its message id")
    func messages() async throws {
        try await LiveGateway.withGateway { live in
            let before = try publish(live, "wm", "before")
            let client = try await WebSocketClient.open(live, "/sub/wm")
            #expect(try await client.control("subscribed")["last_event_id"] as? String == before)
            // Frame lengths in 7, 16 and 64 bits.
            let payloads = ["one", "two \"quoted\"", "</script> \u{2028} üñí", String(repeating: "z", count: 300),
                            String(repeating: "w", count: 65_500)]
            let ids = try publishAll(live, "wm", payloads)
            let messages = try await client.messages(payloads.count)
            #expect(messages.map { $0["data"] as? String } == payloads)
            #expect(messages.map { $0["id"] as? String } == ids)
            #expect(messages.allSatisfy { $0["channel"] as? String == "wm" })
            let frames = try client.received().frames
            #expect(frames.allSatisfy { $0.fin && $0.isText })
            #expect(!client.connection.isClosed)
            await client.close()
        }
    }

    @Test("subscribe and unsubscribe control messages on the same socket are acknowledged")
    func controlMessages() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await WebSocketClient.open(live, "/sub/ca")
            try await client.sendText("{\"type\":\"subscribe\",\"channel\":\"cb\"}")
            let subscribed = try await client.control("subscribed", count: 2)
            #expect(subscribed["channel"] as? String == "cb")
            #expect(try await waitForSubscribers(live, "cb", 1))
            try publish(live, "cb", "to cb")
            try publish(live, "ca", "to ca")
            #expect(try await client.messages(2).map { $0["channel"] as? String } == ["cb", "ca"])

            try await client.sendText("{\"type\":\"unsubscribe\",\"channel\":\"ca\"}")
            #expect(try await client.control("unsubscribed")["channel"] as? String == "ca")
            #expect(try await waitForSubscribers(live, "ca", 0))
            try publish(live, "ca", "not for us")
            try publish(live, "cb", "still for us")
            let after = try await client.messages(3)
            #expect(after.map { $0["data"] as? String } == ["to cb", "to ca", "still for us"])

            // Not subscribed: 404; already subscribed: 409. The socket stays open.
            try await client.sendText("{\"type\":\"unsubscribe\",\"channel\":\"ca\"}")
            let notSubscribed = try await client.control("error")
            #expect(notSubscribed["status"] as? Int == 404)
            #expect(notSubscribed["channel"] as? String == "ca")
            try await client.sendText("{\"type\":\"subscribe\",\"channel\":\"cb\"}")
            let already = try await client.control("error", count: 2)
            #expect(already["status"] as? Int == 409)
            #expect(already["channel"] as? String == "cb")
            try publish(live, "cb", "open")
            #expect(try await client.messages(4).last?["data"] as? String == "open")
            await client.close()
        }
    }

    @Test("Subscribing past max_channels_per_subscription is an error message; the socket stays open")
    func tooManyChannels() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.maxChannelsPerSubscription = 2 }) { live in
            let client = try await WebSocketClient.open(live, "/sub/t1,t2", channels: 2)
            try await client.sendText("{\"type\":\"subscribe\",\"channel\":\"t3\"}")
            let error = try await client.control("error")
            #expect(error["status"] as? Int == 400)
            #expect(error["channel"] as? String == "t3")
            #expect((error["reason"] as? String)?.contains("too many channels") == true)
            #expect(try client.received().objects().filter { $0["type"] as? String == "subscribed" }.count == 2)
            try publish(live, "t3", "not subscribed")
            try publish(live, "t2", "subscribed")
            #expect(try await client.messages(1).map { $0["data"] as? String } == ["subscribed"])
            #expect(!client.connection.isClosed)
            await client.close()
        }
    }

    @Test("Malformed control messages get an error message and leave the socket open")
    func malformedControl() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await WebSocketClient.open(live, "/sub/mc")
            let bad = ["{not json", "[1,2]", "{\"type\":\"subscribe\"}", "{\"type\":\"dance\",\"channel\":\"x\"}",
                       "{\"type\":\"subscribe\",\"channel\":\"bad name\"}", "{\"type\":\"subscribe\",\"channel\":\"ok\",\"last_event_id\":\"1.2\"}",
                       "{\"type\":\"subscribe\",\"channel\":\"ok\",\"last_event_id\":\"<script>\"}", ""]
            for (index, text) in bad.enumerated() {
                try await client.sendText(text)
                let error = try await client.control("error", count: index + 1)
                #expect(error["status"] as? Int == 400, "\(text)")
                #expect(!((error["reason"] as? String) ?? "").contains("<script>"))
            }
            #expect(!client.connection.isClosed)
            try publish(live, "mc", "alive")
            #expect(try await client.messages(1).first?["data"] as? String == "alive")
            await client.close()
        }
    }

    @Test("A publish message without bayeux.relay_url is refused with 403 and the socket stays open")
    func publishWithoutRelay() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await WebSocketClient.open(live, "/sub/pr")
            try await client.sendText(#"{"type":"publish","channel":"pr","data":{"a":1}}"#)
            let error = try await client.control("error")
            #expect(error["status"] as? Int == 403)
            #expect(error["reason"] as? String == "publishing is not enabled (bayeux.relay_url)")
            try publish(live, "pr", "alive")
            #expect(try await client.messages(1).first?["data"] as? String == "alive")
            await client.close()
        }
    }

    @Test("Resume: ?last_event_id= on the URL, per channel on subscribe, a gap when history ran out")
    func resume() async throws {
        try await LiveGateway.withGateway(configure: { $0.history.maxMessages = 3 }) { live in
            let ids = try publishAll(live, "wr", ["r1", "r2", "r3"])
            let client = try await WebSocketClient.open(live, "/sub/wr?last_event_id=\(ids[0])")
            let subscribed = try await client.control("subscribed")
            let startText = try #require(subscribed["last_event_id"] as? String)
            let start = try #require(UInt64(startText))
            #expect(start >= UInt64(ids[0])! && start < UInt64(ids[1])!)
            let live4 = try publish(live, "wr", "r4")
            let messages = try await client.messages(3)
            #expect(messages.map { $0["data"] as? String } == ["r2", "r3", "r4"])
            #expect(messages.map { $0["id"] as? String } == [ids[1], ids[2], live4])
            #expect(try client.received().objects().contains { $0["type"] as? String == "gap" } == false)

            // Per channel: subscribe with a cursor on a socket opened on another channel.
            let other = try publishAll(live, "ws2", ["s1", "s2"])
            try await client.sendText("{\"type\":\"subscribe\",\"channel\":\"ws2\",\"last_event_id\":\"\(other[0])\"}")
            #expect(try await client.control("subscribed", count: 2)["channel"] as? String == "ws2")
            #expect(try await client.messages(4).last?["data"] as? String == "s2")

            // r1 is evicted (r2 to r4 retained): resuming from before it is a gap, right after subscribed.
            try await client.sendText("{\"type\":\"unsubscribe\",\"channel\":\"wr\"}")
            _ = try await client.control("unsubscribed")
            try await client.sendText("{\"type\":\"subscribe\",\"channel\":\"wr\",\"last_event_id\":\"\(UInt64(ids[0])! - 1)\"}")
            let gap = try await client.control("gap")
            #expect(gap["channel"] as? String == "wr")
            let all = try await client.messages(7)
            #expect(all.dropFirst(4).map { $0["data"] as? String } == ["r2", "r3", "r4"])
            let objects = try client.received().objects()
            let gapIndex = try #require(objects.firstIndex { $0["type"] as? String == "gap" })
            #expect(objects[gapIndex - 1]["type"] as? String == "subscribed")
            #expect(objects[gapIndex - 1]["channel"] as? String == "wr")
            await client.close()
        }
    }

    @Test("A URL cursor of several channels is split into each channel's position")
    func multiChannelCursor() async throws {
        try await LiveGateway.withGateway { live in
            try publish(live, "ma", "a1")
            try publish(live, "mb", "b1")
            let cursor = try #require(try await poll(live, "/sub/mb,ma?timeout=1").body["last_event_id"] as? String)
            let a2 = try publish(live, "ma", "a2")
            let b2 = try publish(live, "mb", "b2")
            let client = try await WebSocketClient.open(live, "/sub/mb,ma?last_event_id=\(cursor)", channels: 2)
            let messages = try await client.messages(2)
            #expect(Set(messages.compactMap { $0["data"] as? String }) == ["a2", "b2"])
            #expect(Set(messages.compactMap { $0["id"] as? String }) == [a2, b2], "each id is its channel's message id")
            #expect(try client.received().objects().contains { $0["type"] as? String == "gap" } == false)
            await client.close()
        }
    }

    @Test("Origins: none, the gateway's own, or an exact allowlist entry open; another origin or only \"*\" is 403")
    func origins() async throws {
        try await LiveGateway.withGateway { live in
            let own = "http://127.0.0.1:\(live.publicPort)"
            let cases: [(extra: [String], host: String?, status: Int)] = [
                ([], nil, 101),
                (["Origin: \(own)"], nil, 101),
                (["Origin: http://other.example"], nil, 403),
                (["Origin: \(own)"], "127.0.0.1:1", 403),
                (["Origin: https://127.0.0.1:\(live.publicPort)"], "127.0.0.1", 403),
                (["Origin: null"], nil, 403),
            ]
            for (extra, host, status) in cases {
                let client = try await WebSocketClient.connect(live, "/sub/or", host: host, extra: extra)
                #expect(httpStatus(try await client.head()) == status, "\(extra) Host \(host ?? "default")")
                if status != 101 { #expect(await client.connection.waitForClose(), "\(extra): not closed") }
                await client.close()
            }
        }
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["http://app.example"] }) { live in
            for (origin, status) in [("http://app.example", 101), ("http://app.example:8080", 403), ("https://app.example", 403)] {
                let client = try await WebSocketClient.connect(live, "/sub/or", extra: ["Origin: \(origin)"])
                #expect(httpStatus(try await client.head()) == status, "\(origin)")
                await client.close()
            }
        }
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["*"] }) { live in
            let client = try await WebSocketClient.connect(live, "/sub/or", extra: ["Origin: http://other.example"])
            #expect(httpStatus(try await client.head()) == 403)
            await client.close()
        }
    }

    @Test("Another Sec-WebSocket-Version is 426 with Sec-WebSocket-Version: 13; a bad key is 400")
    func badHandshakes() async throws {
        try await LiveGateway.withGateway { live in
            let old = try await WebSocketClient.connect(live, "/sub/bh", version: "8")
            let oldHead = try await old.head()
            #expect(httpStatus(oldHead) == 426)
            #expect(headerValue(oldHead, "Sec-WebSocket-Version") == "13")
            #expect(await old.connection.waitForClose())
            for key in ["short", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ==x",
                        "dGhlIHNhbXBsZSBub25j!Q==", "dGhlIHNhbXBsZSBub25jZQ%3D%3D"] {
                let bad = try await WebSocketClient.connect(live, "/sub/bh", key: key)
                #expect(httpStatus(try await bad.head()) == 400, "\(key)")
                #expect(await bad.connection.waitForClose())
            }
        }
    }

    @Test("A hostile frame gets its close code and the connection closes; another subscriber keeps receiving",
          arguments: HostileFrame.allCases)
    func hostileFrame(_ hostile: HostileFrame) async throws {
        try await LiveGateway.withGateway { live in
            let bystander = try await WebSocketClient.open(live, "/sub/hf")
            let attacker = try await WebSocketClient.open(live, "/sub/hf")
            try await attacker.connection.send(bytes: hostile.bytes)
            let close = try await attacker.closeFrame()
            #expect(close.closeCode == hostile.closeCode, "\(hostile): \(close)")
            #expect(attacker.connection.isClosed)
            if hostile == .flood {
                let pongs = try attacker.received().frames.filter(\.isPong)
                #expect(pongs.count <= 20, "more pongs than max_messages_per_second")
                #expect(close.closeReason == "too many messages")
            }
            #expect(try await waitForSubscribers(live, "hf", 1))
            try publish(live, "hf", "after \(hostile)")
            #expect(try await bystander.messages(1).first?["data"] as? String == "after \(hostile)")
            #expect(!bystander.connection.isClosed)
            await bystander.close()
        }
    }

    @Test("A ping is answered with a pong carrying the same payload; a close is echoed and the connection closes")
    func pingAndClose() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await WebSocketClient.open(live, "/sub/pc")
            try await client.send(0x9, Array("are you there?".utf8))
            #expect(await client.waitFor { $0.frames.contains(where: \.isPong) })
            let pong = try #require(try client.received().frames.first(where: \.isPong))
            #expect(pong.text == "are you there?")
            #expect(pong.fin)

            var payload: [UInt8] = [0x0B, 0xB9]  // 3001
            payload += Array("bye".utf8)
            try await client.send(0x8, payload)
            let close = try await client.closeFrame()
            #expect(close.closeCode == 3001)
            #expect(try await waitForTotalSubscribers(live, 0))
        }
    }

    @Test("A client that never answers pings is closed with 1001")
    func pingTimeout() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.heartbeatInterval = 0.2 }) { live in
            let client = try await WebSocketClient.open(live, "/sub/pt")
            let close = try await client.closeFrame()
            #expect(close.closeCode == 1001)
            #expect(close.closeReason == "ping not answered")
            #expect(try client.received().frames.contains(where: \.isPing))
        }
    }

    @Test("A client that answers pings stays open across several heartbeat intervals")
    func pingAnswered() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.heartbeatInterval = 0.3 }) { live in
            let client = try await WebSocketClient.open(live, "/sub/pa")
            var answered = 0
            while answered < 5 {
                let want = answered + 1
                let pinged = await client.waitFor { received in
                    received.closed || received.frames.filter(\.isPing).count >= want
                }
                #expect(pinged)
                let received = try client.received()
                #expect(!received.closed, "closed after \(answered) pongs: \(received.frames)")
                guard pinged, !received.closed else { break }
                for ping in received.frames.filter(\.isPing).dropFirst(answered) {
                    try await client.send(0xA, ping.payload)
                    answered += 1
                }
            }
            try publish(live, "pa", "still here")
            #expect(try await client.messages(1).first?["data"] as? String == "still here")
            #expect(!client.connection.isClosed)
            await client.close()
        }
    }

    @Test("Deleting a channel sends closed; when it was the last channel, close code 1000 follows")
    func channelDeleted() async throws {
        try await LiveGateway.withGateway { live in
            try publish(live, "d1", "x")
            try publish(live, "d2", "y")
            let client = try await WebSocketClient.open(live, "/sub/d1,d2", channels: 2)
            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/d1").status == 200)
            let first = try await client.control("closed")
            #expect(first["channel"] as? String == "d1")
            try publish(live, "d2", "d2 lives")
            #expect(try await client.messages(1).first?["data"] as? String == "d2 lives")
            #expect(!client.connection.isClosed)

            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/d2").status == 200)
            let second = try await client.control("closed", count: 2)
            #expect(second["channel"] as? String == "d2")
            let close = try await client.closeFrame()
            #expect(close.closeCode == 1000)
            #expect(close.closeReason == "channel closed")
        }
    }

    @Test("A graceful shutdown sends a reconnect message per channel, then close code 1001")
    func shutdown() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await WebSocketClient.open(live, "/sub/s1,s2", channels: 2)
            let id = try publish(live, "s1", "before the drain")
            #expect(try await client.messages(1).count == 1)
            await live.triggerShutdown()
            let close = try await client.closeFrame()
            #expect(close.closeCode == 1001)
            #expect(close.closeReason == "shutdown")
            let reconnects = try client.received().objects().filter { $0["type"] as? String == "reconnect" }
            #expect(Set(reconnects.compactMap { $0["channel"] as? String }) == ["s1", "s2"])
            #expect(reconnects.first { $0["channel"] as? String == "s1" }?["last_event_id"] as? String == id)
            #expect(reconnects.allSatisfy { $0["last_event_id"] is String })
        }
    }

    @Test("A socket that does not read while large messages are published is closed as a slow consumer")
    func slowConsumer() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.maxOutboundBytes = 4096 }) { live in
            let slow = try await WebSocketClient.open(live, "/sub/sc", receiveBuffer: 4096)
            try await slow.connection.setAutoRead(false)
            let healthy = try await WebSocketClient.open(live, "/sub/sc")
            let before = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)["slow_consumer_closes"] as? Int
            #expect(before == 0)
            let payload = String(repeating: "s", count: 16 * 1024)
            var published = 0
            for _ in 0..<800 {
                try publish(live, "sc", payload)
                published += 1
                let health = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)
                if health["slow_consumer_closes"] as? Int == 1 { break }
            }
            let health = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)
            #expect(health["slow_consumer_closes"] as? Int == 1)
            let count = published
            let allArrived = await healthy.connection.wait(timeout: .seconds(30)) { bytes, _ in
                countTextFrames(bytes, minimumLength: 16 * 1024) >= count
            }
            #expect(allArrived, "the reading subscriber did not get all \(count) messages")
            #expect(!healthy.connection.isClosed)
            try await slow.connection.setAutoRead(true)
            #expect(await slow.connection.waitForClose())
            await healthy.close()
        }
    }
    @Test("Frames split across reads, sent right behind the handshake, and fragmented around a ping are all understood")
    func incrementalFrames() async throws {
        try await LiveGateway.withGateway { live in
            // The handshake and a subscribe in one write.
            let key = WebSocketClient.randomKey()
            let connection = try await LiveByteClient.connect(port: live.publicPort)
            var bytes = Array("GET /sub/i1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n".utf8)
            bytes += Array("Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)
            bytes += clientFrame(0x1, Array("{\"type\":\"subscribe\",\"channel\":\"i2\"}".utf8))
            try await connection.send(bytes: bytes)
            let both = await connection.wait { bytes, _ in
                guard let received = try? Received(bytes, closed: false) else { return false }
                return received.frames.filter { $0.text.hasPrefix("{\"type\":\"subscribed\"") }.count == 2
            }
            #expect(both, "\(connection.text)")

            // A subscribe one byte per write.
            for byte in clientFrame(0x1, Array("{\"type\":\"subscribe\",\"channel\":\"i3\"}".utf8)) {
                try await connection.send(bytes: [byte])
            }
            // A fragmented message with a ping between its fragments and a character split between two of them.
            let text = Array("{\"type\":\"subscribe\",\"channel\":\"i4\",\"x\":\"é\"}".utf8)
            let split = text.firstIndex(of: 0xC3)! + 1
            try await connection.send(bytes: clientFrame(0x1, Array(text[..<split]), fin: false)
                + clientFrame(0x9, Array("between".utf8)) + clientFrame(0x0, Array(text[split...])))
            let all = await connection.wait { bytes, _ in
                guard let received = try? Received(bytes, closed: false) else { return false }
                return received.frames.filter { $0.text.hasPrefix("{\"type\":\"subscribed\"") }.count == 4
                    && received.frames.contains { $0.isPong }
            }
            #expect(all, "\(connection.text)")
            let received = try Received(connection.bytes, closed: connection.isClosed)
            #expect(Set(try received.objects().compactMap { $0["channel"] as? String }) == ["i1", "i2", "i3", "i4"])
            #expect(received.frames.first { $0.isPong }?.text == "between")
            #expect(!connection.isClosed)
            try publish(live, "i4", "via fragments")
            #expect(await connection.wait { bytes, _ in String(decoding: bytes, as: UTF8.self).contains("via fragments") })
            await connection.close()
        }
    }
    @Test("Browser variants of the handshake open a socket: Connection: keep-alive, Upgrade; Upgrade: WebSocket; a transport parameter")
    func handshakeVariants() async throws {
        try await LiveGateway.withGateway { live in
            let variants: [(path: String, lines: [String])] = [
                ("/sub/hv", ["Connection: keep-alive, Upgrade", "Upgrade: websocket"]),  // Firefox
                ("/sub/hv", ["Connection: Upgrade", "Upgrade: WebSocket"]),
                ("/sub/hv?transport=sse", ["Connection: Upgrade", "Upgrade: websocket"]),
                ("/sub/hv?transport=jsonp", ["Connection: Upgrade", "Upgrade: websocket"]),
            ]
            for (path, lines) in variants {
                let connection = try await LiveByteClient.connect(port: live.publicPort)
                var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + lines.map { $0 + "\r\n" }.joined()
                request += "Sec-WebSocket-Key: \(WebSocketClient.randomKey())\r\nSec-WebSocket-Version: 13\r\n\r\n"
                try await connection.send(request)
                #expect(await connection.wait { bytes, _ in splitHTTPHead(bytes) != nil })
                let status = httpStatus(splitHTTPHead(connection.bytes)?.head ?? "")
                // README: "a WebSocket ignores transport" (even a jsonp one without a callback).
                #expect(status == 101, "\(path) \(lines)")
                await connection.close()
            }
        }
    }

    @Test("A request with an Upgrade other than websocket (h2c) is served as plain HTTP")
    func otherUpgradeIgnored() async throws {
        try await LiveGateway.withGateway { live in
            let id = try publish(live, "h2", "over HTTP/1.1")
            let connection = try await LiveByteClient.connect(port: live.publicPort)
            // What `curl --http2` sends to an http:// URL.
            try await connection.send("GET /sub/h2?timeout=1&last_event_id=\(UInt64(id)! - 1) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
            #expect(await connection.wait { bytes, closed in closed || splitHTTPHead(bytes) != nil })
            let status = httpStatus(splitHTTPHead(connection.bytes)?.head ?? "")
            #expect(status == 200, "\(connection.text)")
            await connection.close()
        }
    }

    @Test("With channel tokens, the handshake needs one for its channels and each subscribe message carries its own")
    func channelTokens() async throws {
        try await LiveGateway.withGateway(configure: { $0.auth.channelTokenKey = LiveChannelTokenTests.key }) { live in
            let refused = try await WebSocketClient.connect(live, "/sub/news")
            #expect(try await refused.head().hasPrefix("HTTP/1.1 403"))
            await refused.close()

            let client = try await WebSocketClient.open(live, "/sub/news?token=\(LiveChannelTokenTests.token(["news"]))")
            try await client.sendText(#"{"type":"subscribe","channel":"sports"}"#)
            let error = try await client.control("error")
            #expect(error["status"] as? Int == 403)
            try await client.sendText(#"{"type":"subscribe","channel":"sports","token":"\#(LiveChannelTokenTests.token(["sports"]))"}"#)
            let subscribed = try await client.control("subscribed", count: 2)
            #expect(subscribed["channel"] as? String == "sports")
            await client.close()
        }
    }

    @Test("With auth.authorize_url, the handshake and each subscribe message are authorized by the application")
    func authorizedByTheApplication() async throws {
        let app = try await TestUpstream.start { request in
            guard request.values("cookie").first == "session=good" else { return .init(status: 401, text: "no") }
            return request.uri.hasSuffix("=secret") ? .init(status: 403, text: "no") : .init(text: "ok")
        }
        try await LiveGateway.withGateway(configure: {
            $0.auth.authorizeURL = "http://127.0.0.1:\(app.port)/authorize"
        }) { live in
            let refused = try await WebSocketClient.connect(live, "/sub/news")
            #expect(try await refused.head().hasPrefix("HTTP/1.1 401"))
            await refused.close()

            let client = try await WebSocketClient.connect(live, "/sub/news", extra: ["Cookie: session=good"])
            #expect(try await client.head().hasPrefix("HTTP/1.1 101"))
            _ = try await client.control("subscribed")
            try await client.sendText(#"{"type":"subscribe","channel":"secret"}"#)
            let error = try await client.control("error")
            #expect(error["status"] as? Int == 403)
            try await client.sendText(#"{"type":"subscribe","channel":"sports"}"#)
            let subscribed = try await client.control("subscribed", count: 2)
            #expect(subscribed["channel"] as? String == "sports")
            await client.close()
        }
        await app.stop()
    }
}

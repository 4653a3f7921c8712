import CometCore
import CometRedis
@testable import CometGateway
import NIOCore

/// The libFuzzer targets of the parsers that read the network, in one binary; `COMET_FUZZ_TARGET` picks one.
/// Built and run by `scripts/fuzz.sh` (with `-sanitize=fuzzer,address -D FUZZING`); in a normal build this is a small
/// executable that says so. Every target must return without crashing, trapping or hanging on any input.
enum FuzzTargets {
    static let names = ["http", "epcp", "proxy-headers", "websocket", "request-target", "config", "channel-token", "grip", "resp", "bayeux"]

    /// Runs one input through the target `name`.
    static func run(_ name: String, _ bytes: UnsafeBufferPointer<UInt8>) {
        switch name {
        case "http": Self.http(bytes)
        case "epcp": Self.epcp(bytes)
        case "proxy-headers": Self.proxyHeaders(bytes)
        case "websocket": Self.webSocket(bytes)
        case "request-target": Self.requestTarget(bytes)
        case "config": Self.config(bytes)
        case "channel-token": Self.channelToken(bytes)
        case "grip": Self.grip(bytes)
        case "resp": Self.resp(bytes)
        case "bayeux": Self.bayeux(bytes)
        default: fatalError("unknown COMET_FUZZ_TARGET \(name) (known: \(names.joined(separator: ", ")))")
        }
    }

    /// The HTTP/1 request parser behind the connection state machine, fed in two reads split where the first byte
    /// says; every head it returns must be routable and its headers readable.
    static func http(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let first = bytes.first else { return }
        let split = min(Int(first), bytes.count - 1)
        var machine = HTTPConnectionStateMachine(limits: .init(maxURIBytes: 1024, maxHeaderBytes: 4096))
        var steps = 0
        for part in [bytes[1..<(1 + split)], bytes[(1 + split)...]] {
            guard case .parse = machine.read(ByteBuffer(bytes: part)) else { continue }
            var action = machine.next()
            while steps < 10_000 {
                steps += 1
                switch action {
                case .wait, .fail:
                    action = .wait
                case .route(let head):
                    _ = head.headers
                    _ = try? RequestTarget(parsing: head.uri)
                    action = machine.routed(part.count % 2 == 0 ? .buffer(limit: 64) : .stream)
                    continue
                case .request, .bodyEnd:
                    _ = machine.responseFinished(now: 0, idleTimeout: 1)
                case .bodyPart:
                    break
                }
                if case .wait = action { break }
                action = machine.next()
            }
        }
    }

    static func epcp(_ bytes: UnsafeBufferPointer<UInt8>) {
        _ = try? EPCPPublish.parse(body: ByteBuffer(bytes: bytes), maxItems: 100, maxChannelNameLength: 128)
    }

    /// Header pairs made from `name: value` lines of the input, rewritten both ways.
    static func proxyHeaders(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        let headers = text.split(separator: "\n").map { line -> (name: String, value: String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "")
        }
        let client = ProxyHeaders.Client(address: text.count % 2 == 0 ? "::1" : "127.0.0.1", scheme: "http",
                                         trusted: text.count % 3 == 0)
        _ = ProxyHeaders.request(headers, client: client, chunkedBody: text.count % 5 == 0, upgrade: text.count % 7 == 0)
        _ = ProxyHeaders.response(headers, upgrade: text.count % 11 == 0)
    }

    static func webSocket(_ bytes: UnsafeBufferPointer<UInt8>) {
        var parser = WebSocketFrameParser(limits: .init(maxFrameBytes: 1024, maxMessageBytes: 4096, maxFragments: 4))
        var buffer = ByteBuffer(bytes: bytes)
        for _ in 0..<1000 {
            guard let event = try? parser.next(&buffer) else { return }
            _ = event
        }
    }

    static func requestTarget(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let target = try? RequestTarget(parsing: text) else { return }
        _ = try? SubscribeRequest(target: target, accept: "text/event-stream", lastEventID: nil, limits: SubscribeLimits())
        _ = try? SubscribeRequest(target: target, accept: nil, lastEventID: text, limits: SubscribeLimits(), webSocket: true)
        _ = try? WebSocketCommand(parsing: text, maxChannelNameLength: 128)
    }

    static func config(_ bytes: UnsafeBufferPointer<UInt8>) {
        _ = try? ConfigFileParser.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.conf")
    }

    static func channelToken(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        let channels = text.split(separator: "|").prefix(4).compactMap { try? ChannelName(validating: $0) }
        _ = ChannelTokens(key: "fuzz").refusal(text, channels: channels)
    }

    /// An application's GRIP response: `name: value` header lines, a blank line, the body (an instruct document when
    /// a `content-type: application/grip-instruct` line is among them); what parses is rendered as the gateway
    /// would write it.
    static func grip(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: "\n\n", maxSplits: 1, omittingEmptySubsequences: false)
        let headers = (parts.first ?? "").split(separator: "\n").map { line -> (name: String, value: String) in
            let pieces = line.split(separator: ":", maxSplits: 1)
            return (String(pieces.first ?? ""), pieces.count > 1 ? String(pieces[1].trimmingSpaces) : "")
        }
        let body = parts.count > 1 ? Array(parts[1].utf8) : []
        let status = [200, 200, 404, 500][text.utf8.count % 4]
        guard GripInstruction.isInstruction(headers),
              let instruction = try? GripInstruction.parse(status: status, reason: "OK", headers: headers, body: body,
                                                           maxChannels: 16, maxChannelNameLength: 128)
        else { return }
        _ = GripResponses.render(instruction.response, keepAlive: true, date: "now", headOnly: false)
        _ = GripStreamTransport(instruction: instruction, chunked: text.count % 2 == 0, date: "now", heartbeatInterval: 15)
    }

    /// A Bayeux request body: parsed as a batch; every message's channel read as a Bayeux channel (and its gateway
    /// channel), its data written back as JSON and checked; the body also parsed, written back and parsed again, and read
    /// as a delivery.
    static func bayeux(_ bytes: UnsafeBufferPointer<UInt8>) {
        let body = ByteBuffer(bytes: bytes)
        if let messages = try? BayeuxMessage.parse(body, maxMessages: 16) {
            for message in messages {
                let channel = BayeuxChannel(message.channel)
                _ = channel?.gatewayChannel()
                if let channel, let other = BayeuxChannel("/a/b") { _ = channel.matches(other) }
                for name in message.subscriptions { _ = BayeuxChannel(name) }
                if let data = message.data {
                    let text = data.jsonText
                    let valid = text.withUnsafeReadableBytes { JSONSyntax.isValid($0, maxDepth: 100) }
                    precondition(valid, "JSONValue.write made invalid JSON")
                }
                var reply = BayeuxReply.failure(message.channel, id: message.id, error: "400:\(message.channel):x")
                reply.subscription = message.subscription
                reply.ext = message.ext.map { .object($0) }
                let written = reply.bytes
                precondition(written.withUnsafeReadableBytes { JSONSyntax.isValid($0, maxDepth: 100) }, "a reply is not JSON")
            }
        }
        // Whatever parses is written back as JSON that parses again.
        if let parsed = try? JSONValue(parsing: UnsafeRawBufferPointer(bytes), maxDepth: 32) {
            let text = parsed.jsonText
            precondition(text.withUnsafeReadableBytes { JSONSyntax.isValid($0, maxDepth: 33) }, "a parsed value wrote invalid JSON")
        }
        if let channel = try? ChannelName(validating: "fuzz.a") {
            let message = Message(channel: channel, id: 1, event: nil, contentType: "application/json", data: body,
                                  publishedAt: 0)
            _ = BayeuxEncoding.event(message)
        }
    }

    /// What a Redis server (or something pretending to be one) sends: RESP values read with small bounds, each also
    /// read as a stored message and as a pub/sub payload.
    static func resp(_ bytes: UnsafeBufferPointer<UInt8>) {
        var buffer = ByteBuffer(bytes: bytes)
        let parser = RESPParser(limits: .init(maxBulkBytes: 4096, maxArrayCount: 64, maxDepth: 4, maxLineBytes: 256))
        for _ in 0..<1000 {
            guard let value = try? parser.next(&buffer) else { return }
            if let bulk = value.bytes {
                _ = RedisMessageCodec.decode(bulk, channel: try! ChannelName(validating: "fuzz"), id: 1)
            }
            _ = value.elements?.compactMap(\.int)
        }
    }
}

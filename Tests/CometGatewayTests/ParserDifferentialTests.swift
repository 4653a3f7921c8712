import CometCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The gateway's HTTP/1 request parser against NIOHTTP1's decoder (llhttp) on the same inputs: a corpus of request
/// heads built from pieces (methods, targets, versions, header lines, framing) and seeded mutations of them.
///
/// Whenever both accept a request, they must agree on the method, the target, the version, the header fields (in
/// order) and, for a body framed by `Content-Length` or chunks, the body. Where the gateway refuses what NIO accepts,
/// the refusal must be one of its documented stricter rules (kept in ``allowedStricter``), never a surprise.
@Suite("HTTP/1 parser against NIOHTTP1")
struct ParserDifferentialTests {
    /// What a parser made of an input: the request, or nil when it refused it.
    struct Parsed: Equatable, CustomStringConvertible {
        var method: String
        var uri: String
        var minor: Int
        var headers: [String]
        var body: [UInt8]

        var description: String { "\(method) \(uri) HTTP/1.\(minor) \(headers) body \(body.count)" }
    }

    /// The gateway's refusals of requests NIO accepts that are deliberate (README, "HTTP parsing"), the reasons seen
    /// on this corpus: one space between the request line's parts (llhttp takes several), no bare CR, `Host`
    /// required in HTTP/1.1, no `Transfer-Encoding` in HTTP/1.0.
    static let allowedStricter = ["malformed request line", "malformed HTTP version", "bare CR", "missing Host header",
                                  "Transfer-Encoding in an HTTP/1.0 request"]

    static func ours(_ bytes: [UInt8]) -> (Parsed?, String?) {
        var parser = HTTPRequestParser(limits: .init(maxURIBytes: 4096, maxHeaderBytes: 8192))
        var buffer = ByteBuffer(bytes: bytes)
        var parsed: Parsed?
        do {
            while let event = try parser.next(&buffer) {
                switch event {
                case .head(let head):
                    parsed = Parsed(method: head.method.description, uri: head.uri, minor: head.minorVersion,
                                    headers: head.headers.map { "\($0.name.lowercased()): \($0.value)" }, body: [])
                case .body(let part):
                    parsed?.body += part.readableBytesView
                case .end:
                    return (parsed, nil)
                }
            }
            return (nil, "incomplete")
        } catch {
            return (nil, error.reason)
        }
    }

    static func nio(_ bytes: [UInt8]) -> Parsed? {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        guard (try? channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))) != nil,
              (try? channel.writeInbound(ByteBuffer(bytes: bytes))) != nil
        else { return nil }
        var parsed: Parsed?
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                // A field value's surrounding whitespace is not part of it (RFC 9110, section 5.5); llhttp keeps the
                // trailing part, the gateway drops it.
                parsed = Parsed(method: head.method.rawValue, uri: head.uri, minor: head.version.minor,
                                headers: head.headers.map { "\($0.name.lowercased()): \(Self.trimmed($0.value))" }, body: [])
            case .body(let part):
                parsed?.body += part.readableBytesView
            case .end:
                return parsed
            }
        }
        return nil
    }

    static func trimmed(_ value: String) -> String {
        String(value.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// Requests made from pieces, then mutated with a fixed seed (the same inputs on every run).
    static func corpus() -> [[UInt8]] {
        let methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]
        let targets = ["/", "/sub/news", "/pub/a?x=1&y=%20", "/a/b/../c", "*", "http://h/abs", "/%E2%82%AC?q=\u{20AC}"]
        let versions = ["HTTP/1.1", "HTTP/1.0"]
        let headerSets = [
            ["Host: a"],
            ["Host: a", "Content-Length: 5", "X-A: 1"],
            ["Host: a", "Transfer-Encoding: chunked"],
            ["host:a", "X-Empty:", "X-Spaces:   v   "],
            ["Host: a", "Connection: keep-alive, Upgrade", "Upgrade: websocket"],
            ["Host: a", "Content-Length: 5", "Content-Length: 5"],
            ["Host: a", "X-Obs: a\r\n folded"],
            [],
        ]
        var corpus: [[UInt8]] = []
        for method in methods {
            for target in targets {
                for version in versions {
                    for headers in headerSets {
                        var text = "\(method) \(target) \(version)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
                        if headers.contains("Content-Length: 5") { text += "hello" }
                        if headers.contains("Transfer-Encoding: chunked") { text += "5\r\nhello\r\n0\r\n\r\n" }
                        corpus.append(Array(text.utf8))
                    }
                }
            }
        }
        var generator = SplitMix(seed: 0x5EED)
        let seeds = corpus
        for _ in 0..<4000 {
            var bytes = seeds[Int(generator.next() % UInt64(seeds.count))]
            for _ in 0..<(1 + Int(generator.next() % 3)) where !bytes.isEmpty {
                let index = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: index)
                case 2: bytes.insert(Array(" :\r\n\t\0\u{7F}".utf8)[Int(generator.next() % 7)], at: index)
                default: bytes.insert(bytes[index], at: index)
                }
            }
            corpus.append(bytes)
        }
        return corpus
    }

    @Test("When both parsers accept a request they agree on it; the gateway refuses more only by its stricter rules")
    func agreement() {
        var bothAccepted = 0
        for input in Self.corpus() {
            let (mine, refusal) = Self.ours(input)
            let theirs = Self.nio(input)
            if let mine, let theirs {
                bothAccepted += 1
                #expect(mine == theirs, "\(String(decoding: input, as: UTF8.self).debugDescription)")
            } else if mine == nil, theirs != nil, let refusal {
                #expect(Self.allowedStricter.contains(refusal),
                        "refused by the gateway only (\(refusal)): \(String(decoding: input, as: UTF8.self).debugDescription)")
            }
        }
        #expect(bothAccepted > 500, "the corpus exercises the accepting paths (\(bothAccepted) requests)")
    }
}

/// A small deterministic generator (SplitMix64), so that the mutated corpus is the same on every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

import CometCore
import NIOCore
import Testing

/// The fields the parser indexes while it checks a head (``RequestHead/first(_:)``) read exactly what a scan of the
/// header section (``RequestHead/first(name:)``) reads: the first field of that name, trimmed, in any letter case.
@Suite("Request head: indexed header fields")
struct RequestHeadKnownFieldTests {
    private static func parseHead(_ text: String, splitAt split: Int? = nil) throws -> RequestHead {
        var parser = HTTPRequestParser(limits: .init())
        let bytes = Array(text.utf8)
        var buffer = ByteBuffer()
        var pieces = [bytes[...]]
        if let split { pieces = [bytes[..<split], bytes[split...]] }
        for piece in pieces {
            buffer.writeBytes(piece)
            while let event = try parser.next(&buffer) {
                if case .head(let head) = event { return head }
            }
        }
        Issue.record("no head parsed from \(text.debugDescription)")
        throw NoHead()
    }

    private struct NoHead: Error {}

    private static func expectSameAsScan(_ head: RequestHead, _ context: String) {
        for field in RequestHead.KnownField.allCases {
            #expect(head.first(field) == head.first(name: field.name), "\(field) in \(context.debugDescription)")
        }
    }

    static let heads: [String] = [
        "GET /sub/a HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /pub/a HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nX-Comet-Event: e1\r\nContent-Length: 0\r\n\r\n",
        "GET /sub/a HTTP/1.1\r\nhost: x\r\nACCEPT:text/event-stream\r\nlast-EVENT-id: \t 17.18 \t\r\nOrigin: https://a.example\r\n\r\n",
        "GET /sub/a HTTP/1.1\r\nHost: x\r\nOrigin: first\r\nOrigin: second\r\nAccept: a\r\naccept: b\r\n\r\n",
        "GET /sub/a HTTP/1.1\r\nHost: x\r\nAccept:\r\nOrigin:   \r\nAuthorization: Bearer k\r\n\r\n",
        "GET /sub/a HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nOriginal: no\r\nContent-Types: no\r\nX-Comet-Events: no\r\n\r\n",
        "GET /sub/a HTTP/1.1\nHost: x\nAccept: lf-only\nLast-Event-ID: 5\n\n",
        "GET /sub/a HTTP/1.0\r\nAccept: \u{E9}t\u{E9} obs-text\r\n\r\n",
    ]

    @Test("each indexed field reads what a scan reads", arguments: heads)
    func sameAsScan(_ text: String) throws {
        Self.expectSameAsScan(try Self.parseHead(text), text)
    }

    @Test("the index is the same wherever the head is split between reads", arguments: heads)
    func splitHeads(_ text: String) throws {
        for split in 1..<text.utf8.count {
            Self.expectSameAsScan(try Self.parseHead(text, splitAt: split), "\(text) split at \(split)")
        }
    }

    @Test("a lookup with common values reads exactly what a plain lookup reads, common or not, in any letter case")
    func commonValues() throws {
        let common = PublishRequest.commonContentTypes + ["a", "first", ""]
        let values = ["application/json", "Application/JSON", "application/json ", "text/plain; charset=utf-8",
                      "text/plain;charset=utf-8", "application/jsonx", "applicatio", "x", ""]
        for value in values {
            let head = try Self.parseHead("POST /pub/a HTTP/1.1\r\nHost: x\r\nContent-Type: \(value)\r\n\r\n")
            #expect(head.first(.contentType, common: common) == head.first(.contentType), "\(value.debugDescription)")
        }
        for text in Self.heads {
            let head = try Self.parseHead(text)
            for field in RequestHead.KnownField.allCases {
                #expect(head.first(field, common: common) == head.first(field), "\(field) in \(text.debugDescription)")
            }
        }
    }

    @Test("values come out trimmed, first field wins, absent fields are nil")
    func values() throws {
        let head = try Self.parseHead(Self.heads[3])
        #expect(head.first(.origin) == "first")
        #expect(head.first(.accept) == "a")
        #expect(head.first(.contentType) == nil)
        let trimmed = try Self.parseHead(Self.heads[2])
        #expect(trimmed.first(.lastEventID) == "17.18")
        #expect(trimmed.first(.accept) == "text/event-stream")
        let empty = try Self.parseHead(Self.heads[4])
        #expect(empty.first(.accept) == "")
        #expect(empty.first(.origin) == "")
        #expect(empty.first(.authorization) == "Bearer k")
    }

    @Test("random heads: every indexed field agrees with a scan")
    func randomHeads() throws {
        var state: UInt64 = 0x5eed
        func next(_ upper: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(upper))
        }
        let names = ["Accept", "accept", "ORIGIN", "Origin", "Content-Type", "content-type", "X-Comet-Event",
                     "x-comet-event", "Authorization", "Last-Event-ID", "last-event-id", "X-Other", "Accepts", "Cookie"]
        let values = ["", " ", "v", " padded ", "\tt\t", "a,b", "text/event-stream", "Bearer xyz", "1.2.3", "é"]
        for round in 0..<300 {
            var text = "GET /sub/a HTTP/1.1\r\nHost: h\r\n"
            for _ in 0..<next(12) {
                text += "\(names[next(names.count)]):\(values[next(values.count)])\r\n"
            }
            text += "\r\n"
            Self.expectSameAsScan(try Self.parseHead(text), "round \(round): \(text)")
        }
    }
}

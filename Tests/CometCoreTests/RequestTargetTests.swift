import CometCore
import Foundation
import Testing

@Suite("RequestTarget")
struct RequestTargetTests {
    static func pairs(_ target: RequestTarget) -> [[String]] {
        target.query.map { [$0.name, $0.value] }
    }

    @Test("a path without a query")
    func pathOnly() throws {
        let target = try RequestTarget(parsing: "/sub/news")
        #expect(target.path == "/sub/news")
        #expect(target.query.isEmpty)
        #expect(target.queryValue("transport") == nil)
    }

    @Test("the root path and an empty query")
    func rootAndEmptyQuery() throws {
        #expect(try RequestTarget(parsing: "/").path == "/")
        let target = try RequestTarget(parsing: "/sub/a?")
        #expect(target.path == "/sub/a")
        #expect(target.query.isEmpty)
    }

    @Test("query parameters are kept in order; queryValue returns the first")
    func queryOrder() throws {
        let target = try RequestTarget(parsing: "/sub/a?transport=sse&x=1&transport=poll&flag&empty=")
        #expect(Self.pairs(target) == [["transport", "sse"], ["x", "1"], ["transport", "poll"], ["flag", ""], ["empty", ""]])
        #expect(target.queryValue("transport") == "sse")
        #expect(target.queryValue("flag") == "")
        #expect(target.queryValue("missing") == nil)
    }

    @Test("empty pairs are skipped and only the first = splits")
    func emptyPairsAndEquals() throws {
        let target = try RequestTarget(parsing: "/p?&&a=1=2&&=v&")
        #expect(Self.pairs(target) == [["a", "1=2"], ["", "v"]])
    }

    @Test("only the first ? starts the query")
    func secondQuestionMark() throws {
        let target = try RequestTarget(parsing: "/p?next=/a?b=c")
        #expect(target.path == "/p")
        #expect(Self.pairs(target) == [["next", "/a?b=c"]])
    }

    @Test("percent-decoding of path, names and values; + is a space only in the query")
    func percentDecoding() throws {
        let target = try RequestTarget(parsing: "/sub/a%2Cb+c%7e?na%6De=v%61l+ue&plus=%2B&amp=%26&eq=%3D&pct=%25")
        #expect(target.path == "/sub/a,b+c~")
        #expect(Self.pairs(target) == [["name", "val ue"], ["plus", "+"], ["amp", "&"], ["eq", "="], ["pct", "%"]])
    }

    @Test("upper- and lower-case hex digits decode alike")
    func hexCase() throws {
        #expect(try RequestTarget(parsing: "/%4a%4A%e2%82%AC").path == "/JJ€")
    }

    @Test("multi-byte UTF-8 escapes decode to the character")
    func multiByte() throws {
        #expect(try RequestTarget(parsing: "/%C3%A9%F0%9F%98%80").path == "/é😀")
        #expect(try RequestTarget(parsing: "/?q=%E4%B8%AD").queryValue("q") == "中")
    }

    @Test("an escaped NUL decodes (later validation rejects it where it matters)")
    func escapedNUL() throws {
        #expect(try RequestTarget(parsing: "/a%00b").path == "/a\u{0}b")
    }

    @Test(
        "rejects a target that is not an absolute path",
        arguments: ["", "sub/a", "*", "http://example.com/sub/a", "?q=1", " /sub/a", "%2Fsub"]
    )
    func rejectsNonOriginForm(_ uri: String) {
        expectGatewayError(.badRequest) { _ = try RequestTarget(parsing: uri) }
    }

    @Test(
        "rejects malformed percent escapes",
        arguments: [
            "/%", "/a%", "/%4", "/a%4", "/%G0", "/%0G", "/%%", "/%%41", "/%-1", "/% 1", "/%+1", "/?q=%", "/?q=%4",
            "/?q=%zz", "/?%=1", "/?a=1&b=%X",
        ]
    )
    func rejectsMalformedEscapes(_ uri: String) {
        expectGatewayError(.badRequest) { _ = try RequestTarget(parsing: uri) }
    }

    @Test(
        "rejects escapes that decode to invalid UTF-8",
        arguments: [
            "/%FF", "/%80", "/%C3", "/%C3%28", "/%E2%82", "/%F0%9F%98", "/%C0%AF", "/%E0%80%AF", "/%ED%A0%80",
            "/%F4%90%80%80", "/?q=%FE", "/?%C3=1", "/ok?q=%E2%28%A1",
        ]
    )
    func rejectsInvalidUTF8(_ uri: String) {
        expectGatewayError(.badRequest) { _ = try RequestTarget(parsing: uri) }
    }

    @Test("percentDecode without escapes returns the text unchanged")
    func percentDecodeFastPath() throws {
        #expect(try RequestTarget.percentDecode("plain-text", plusIsSpace: true) == "plain-text")
        #expect(try RequestTarget.percentDecode("a+b", plusIsSpace: false) == "a+b")
        #expect(try RequestTarget.percentDecode("a+b", plusIsSpace: true) == "a b")
        #expect(try RequestTarget.percentDecode("é😀", plusIsSpace: true) == "é😀")
        #expect(try RequestTarget.percentDecode("", plusIsSpace: true) == "")
    }

    @Test("a long target decodes")
    func longTarget() throws {
        let channels = (0..<1000).map { "c\($0)" }.joined(separator: "%2C")
        let target = try RequestTarget(parsing: "/sub/" + channels + "?pad=" + String(repeating: "%41", count: 10_000))
        #expect(target.path.split(separator: ",").count == 1000)
        #expect(target.queryValue("pad") == String(repeating: "A", count: 10_000))
    }

    @Test("equality compares path and query in order")
    func equality() throws {
        #expect(try RequestTarget(parsing: "/a?x=1&y=2") == RequestTarget(parsing: "/a?x=%31&y=2"))
        #expect(try RequestTarget(parsing: "/a?x=1&y=2") != RequestTarget(parsing: "/a?y=2&x=1"))
        #expect(try RequestTarget(parsing: "/a?x=1") != RequestTarget(parsing: "/b?x=1"))
        #expect(try RequestTarget(parsing: "/a?x=1") != RequestTarget(parsing: "/a?x=1&x=1"))
    }

    @Test("queryValue finds what the decoded pairs hold, for plain, escaped and + names, over random queries")
    func queryValueMatchesPairs() throws {
        let pieces = ["a", "b", "a%62", "%61", "a+b", "a%20b", "a b", "", "=", "%3D", "x%26y", "1", "%E4%B8%AD"]
        let names = ["a", "b", "ab", "a b", "=", "x&y", "1", "中", "", "missing"]
        var state: UInt64 = 42
        func next(_ upper: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(upper))
        }
        for _ in 0..<500 {
            var query = ""
            for index in 0..<next(6) {
                if index > 0 || next(2) == 0 { query += "&" }
                query += pieces[next(pieces.count)]
                if next(3) > 0 { query += "=" + pieces[next(pieces.count)] }
            }
            let target = try RequestTarget(parsing: "/p?" + query)
            let expected = Self.oraclePairs(query)
            #expect(target.query.map { [$0.name, $0.value] } == expected.map { [$0.name, $0.value] }, "\(query)")
            for name in names {
                #expect(target.queryValue(name) == expected.first(where: { $0.name == name })?.value, "\(query) \(name)")
            }
            // Three names in one pass find what three separate lookups find.
            let three = (names[next(names.count)], names[next(names.count)], names[next(names.count)])
            let values = target.queryValues(three.0, three.1, three.2)
            let lookups = [three.0, three.1, three.2].map { name in expected.first(where: { $0.name == name })?.value }
            #expect([values.0, values.1, values.2].map { $0.map(String.init) } == lookups, "\(query) \(three)")
        }
    }

    /// An independent reading of a query (Foundation's decoder, not the gateway's scanner): `&`-separated pieces,
    /// empty ones skipped, split at the first `=`, `+` read as a space, then percent-decoded.
    private static func oraclePairs(_ query: String) -> [(name: String, value: String)] {
        func decode(_ text: Substring) -> String {
            text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "<invalid>"
        }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { piece in
            guard let equals = piece.firstIndex(of: "=") else { return (decode(piece), "") }
            return (decode(piece[..<equals]), decode(piece[piece.index(after: equals)...]))
        }
    }
}

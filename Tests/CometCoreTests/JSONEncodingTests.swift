import CometCore
import Foundation
import NIOCore
import Testing

@Suite("JSONEncoding")
struct JSONEncodingTests {
    /// Encodes `string` with `JSONEncoding.writeString(_: String, into:)`.
    static func encode(_ string: String) -> [UInt8] {
        var buffer = ByteBuffer()
        JSONEncoding.writeString(string, into: &buffer)
        return bytes(buffer)
    }

    /// Decodes a JSON string literal with Foundation (inside an array, so no fragment support is needed).
    static func decode(_ literal: [UInt8]) throws -> String {
        let document = Data([UInt8(ascii: "[")] + literal + [UInt8(ascii: "]")])
        let decoded = try JSONDecoder().decode([String].self, from: document)
        return try #require(decoded.first)
    }

    /// Checks the properties every encoded string must have: quoted; decodes to the original; and, between the
    /// quotes, no raw control character, DEL, `<`, `>`, `&`, U+2028 or U+2029 (the HTML/JavaScript-safe promise).
    static func expectSafeRoundTrip(_ string: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let output = encode(string)
        #expect(output.first == UInt8(ascii: "\""), sourceLocation: sourceLocation)
        #expect(output.last == UInt8(ascii: "\""), sourceLocation: sourceLocation)
        #expect(try decode(output) == string, "round trip of \(string.debugDescription)", sourceLocation: sourceLocation)
        let unsafeBytes = output.dropFirst().dropLast().filter {
            $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "&")
        }
        #expect(unsafeBytes.isEmpty, "unescaped bytes in \(string.debugDescription)", sourceLocation: sourceLocation)
        let separators = String(decoding: output, as: UTF8.self).unicodeScalars.filter { $0 == "\u{2028}" || $0 == "\u{2029}" }
        #expect(separators.isEmpty, "unescaped U+2028/U+2029", sourceLocation: sourceLocation)
    }

    @Test(
        "round-trips through Foundation's JSON decoder",
        arguments: [
            "", "plain", "say \"hi\"", "back\\slash", "\\\"", "\"", "\\", "tab\tnewline\ncr\r", "<script>alert(1)</script>",
            "a & b > c < d", "</script><!--", "\u{2028}", "\u{2029}", "x\u{2028}y\u{2029}z", "\u{2028}\u{2029}\u{2028}",
            "end\u{2028}", "\u{2029}start", "é€😀中文", "\u{7F}", "\u{0}", "nul\u{0}inside", "\u{1F}\u{1B}[31mred",
            "\u{8}\u{C}", "{\"id\":\"1\"}", "\u{FEFF}bom", "\u{202A}\u{2027}\u{2018}", String(repeating: "long \"text\" ", count: 10_000),
        ]
    )
    func roundTrips(_ string: String) throws {
        try Self.expectSafeRoundTrip(string)
    }

    @Test("every ASCII character round-trips and is escaped where needed")
    func everyASCIICharacter() throws {
        let all = String(String.UnicodeScalarView((0...0x7F).map { Unicode.Scalar(UInt8($0)) }))
        try Self.expectSafeRoundTrip(all)
        for value in 0...0x7F {
            try Self.expectSafeRoundTrip(String(Unicode.Scalar(UInt8(value))))
        }
    }

    @Test("quote and backslash use their two-character escapes")
    func quoteAndBackslash() {
        #expect(Self.encode("\"") == Array(#""\"""#.utf8))
        #expect(Self.encode("\\") == Array(#""\\""#.utf8))
        #expect(Self.encode("a\"b\\c") == Array(#""a\"b\\c""#.utf8))
    }

    @Test(
        "characters unsafe in HTML/JavaScript are escaped as \\uXXXX",
        arguments: [
            ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u{2028}", "\\u2028"), ("\u{2029}", "\\u2029"),
            ("\u{0}", "\\u0000"), ("\u{1}", "\\u0001"), ("\u{1F}", "\\u001f"), ("\u{7F}", "\\u007f"),
        ]
    )
    func unicodeEscapes(_ input: String, _ escape: String) {
        // JSON allows either case of hex digits.
        let output = String(decoding: Self.encode(input), as: UTF8.self).lowercased()
        #expect(output == "\"" + escape + "\"")
    }

    @Test("multi-byte UTF-8 passes through unchanged")
    func multiByteUTF8PassesThrough() {
        // Two-, three- and four-byte sequences, and three-byte sequences that share U+2028's lead bytes (E2 80).
        for string in ["é", "€", "😀", "中文", "\u{2027}", "\u{202A}", "\u{2018}quoted\u{2019}", "ünïcödé 👩‍👩‍👧"] {
            #expect(Self.encode(string) == [UInt8(ascii: "\"")] + Array(string.utf8) + [UInt8(ascii: "\"")])
        }
    }

    @Test("the ByteBuffer and String overloads agree, and only readable bytes are encoded")
    func byteBufferOverload() throws {
        let payload = "line\none \"two\" <three> \u{2028}€"
        var fromBuffer = ByteBuffer()
        JSONEncoding.writeString(ByteBuffer(string: payload), into: &fromBuffer)
        #expect(bytes(fromBuffer) == Self.encode(payload))

        var source = ByteBuffer(string: "IGNORED" + payload)
        source.moveReaderIndex(forwardBy: "IGNORED".utf8.count)
        var fromSlice = ByteBuffer()
        JSONEncoding.writeString(source, into: &fromSlice)
        #expect(try Self.decode(bytes(fromSlice)) == payload)
    }

    @Test("writing appends to what the buffer already holds")
    func appends() throws {
        var buffer = ByteBuffer(string: "{\"k\":")
        JSONEncoding.writeString("v<", into: &buffer)
        buffer.writeString("}")
        let object = try JSONSerialization.jsonObject(with: Data(bytes(buffer))) as? [String: String]
        #expect(object == ["k": "v<"])
    }

    @Test(
        "writeDecimal and writeQuotedInteger render decimal digits",
        arguments: [0, 1, 9, 10, 99, 100, 101, 1_234_567_890, 1_764_000_000_123_456, 10_000_000_000_000_000_000, UInt64.max - 1, UInt64.max] as [UInt64]
    )
    func decimals(_ value: UInt64) {
        var decimal = ByteBuffer(string: "#")
        JSONEncoding.writeDecimal(value, into: &decimal)
        #expect(text(decimal) == "#" + String(value))

        var quoted = ByteBuffer()
        JSONEncoding.writeQuotedInteger(value, into: &quoted)
        #expect(text(quoted) == "\"" + String(value) + "\"")
    }
}

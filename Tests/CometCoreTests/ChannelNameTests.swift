import CometCore
import Testing

@Suite("ChannelName")
struct ChannelNameTests {
    /// Every character the documentation allows: `A-Z a-z 0-9 _ - . : @ ~`.
    static let allowedCharacters: [Character] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + Array("abcdefghijklmnopqrstuvwxyz") + Array("0123456789")
        + ["_", "-", ".", ":", "@", "~"]

    @Test("accepts every documented character")
    func acceptsEveryAllowedCharacter() throws {
        for character in Self.allowedCharacters {
            let name = try ChannelName(validating: String(character))
            #expect(name.rawValue == String(character))
        }
        let all = String(Self.allowedCharacters)
        #expect(try ChannelName(validating: all).rawValue == all)
    }

    @Test("accepts typical names", arguments: ["news", "user:42", "room.lobby", "a", "x-y_z", "me@example", "~tilde", "..", ".hidden", "trailing."])
    func acceptsTypicalNames(_ text: String) throws {
        let name = try ChannelName(validating: text)
        #expect(name.rawValue == text)
        #expect(name.description == text)
    }

    @Test("rejects every other ASCII byte")
    func rejectsEveryOtherASCIIByte() {
        let allowed = Set(Self.allowedCharacters.map { $0.asciiValue! })
        for byte in UInt8(0)...UInt8(0x7F) where !allowed.contains(byte) {
            let text = "ok" + String(UnicodeScalar(byte)) + "ok"
            expectGatewayError(.badRequest) { _ = try ChannelName(validating: text) }
        }
    }

    @Test(
        "rejects forbidden characters",
        arguments: [
            "a b", "a/b", "a,b", "a%20b", "a?b", "a#b", "a\"b", "a\\b", "<script>", "a\nb", "a\rb", "a\u{0}b",
            "a\u{7F}b", "café", "日本", "emoji😀", "a\u{2028}b", "a+b", "a=b", "a&b", "a*b", "a'b", "a;b", " ", "\t",
        ]
    )
    func rejectsForbiddenCharacters(_ text: String) {
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: text) }
    }

    @Test("rejects the empty name")
    func rejectsEmpty() {
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: "") }
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: "abc".prefix(0)) }
    }

    @Test("length limit: the default maximum is 128 and is inclusive")
    func defaultLengthLimit() throws {
        #expect(ChannelName.defaultMaxLength == 128)
        let longest = String(repeating: "a", count: 128)
        #expect(try ChannelName(validating: longest).rawValue == longest)
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: longest + "a") }
    }

    @Test("length limit: a custom maximum is honoured")
    func customLengthLimit() throws {
        #expect(try ChannelName(validating: "abcd", maxLength: 4).rawValue == "abcd")
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: "abcde", maxLength: 4) }
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: "a", maxLength: 0) }
        let long = String(repeating: "a", count: 1000)
        #expect(try ChannelName(validating: long, maxLength: 1000).rawValue == long)
    }

    @Test("a very long hostile name is rejected")
    func veryLongName() {
        let huge = String(repeating: "a", count: 1 << 20)
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: huge) }
        let hugeWithBadByte = String(repeating: "a", count: 100) + "/" + String(repeating: "a", count: 1 << 20)
        expectGatewayError(.badRequest) { _ = try ChannelName(validating: hugeWithBadByte, maxLength: Int.max) }
    }

    @Test("validates a Substring as well as a String")
    func validatesSubstrings() throws {
        let list = "alpha,beta"
        let parts = list.split(separator: ",")
        #expect(try ChannelName(validating: parts[0]).rawValue == "alpha")
        #expect(try ChannelName(validating: parts[1]).rawValue == "beta")
    }

    @Test("ordering and equality follow the raw value")
    func orderingAndEquality() throws {
        let names = try ["b", "a", "C", "a.b", "_", "0"].map { try ChannelName(validating: $0) }
        #expect(names.sorted().map(\.rawValue) == ["b", "a", "C", "a.b", "_", "0"].sorted())
        #expect(try ChannelName(validating: "same") == ChannelName(validating: "same"))
        #expect(try ChannelName(validating: "same") != ChannelName(validating: "Same"))
        #expect(try Set([ChannelName(validating: "x"), ChannelName(validating: "x")]).count == 1)
    }

    @Test("names made from different sources hash and compare by their text; a dictionary finds each exactly")
    func hashingFollowsTheText() throws {
        let texts = (0..<2_000).map { "ch\($0)" } + ["a", "A", "aa", "a.", ".a", "~", "@"]
        var index: [ChannelName: Int] = [:]
        for (position, text) in texts.enumerated() {
            index[try ChannelName(validating: text)] = position
        }
        #expect(index.count == texts.count)
        for (position, text) in texts.enumerated() {
            let fromSubstring = try ChannelName(validating: ("<" + text + ">").dropFirst().dropLast())
            #expect(index[fromSubstring] == position, "\(text)")
            #expect(fromSubstring.hashValue == (try ChannelName(validating: text)).hashValue)
        }
        #expect(index[try ChannelName(validating: "ch2000")] == nil)
    }
}

import CometCore
import Testing

@Suite("Cursor")
struct CursorTests {
    @Test("parses one position")
    func parsesOnePosition() throws {
        #expect(try Cursor(parsing: "1764000000123456").positions == [1_764_000_000_123_456])
        #expect(try Cursor(parsing: "0").positions == [0])
    }

    @Test("parses several dot-separated positions in order")
    func parsesSeveralPositions() throws {
        #expect(try Cursor(parsing: "1764000000123456.1764000000200000").positions == [1_764_000_000_123_456, 1_764_000_000_200_000])
        #expect(try Cursor(parsing: "3.2.1").positions == [3, 2, 1])
    }

    @Test("accepts UInt64.max and rejects one more")
    func uint64Bounds() throws {
        #expect(try Cursor(parsing: String(UInt64.max)).positions == [UInt64.max])
        #expect(try Cursor(parsing: "1." + String(UInt64.max)).positions == [1, UInt64.max])
        // 18446744073709551616 = UInt64.max + 1: overflows on the last addition.
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: "18446744073709551616") }
        // 18446744073709551620: overflows on the last addition too, with a larger digit.
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: "18446744073709551620") }
        // 21 digits: overflows on the multiplication.
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: "100000000000000000000") }
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: "1." + String(repeating: "9", count: 40)) }
    }

    @Test("leading zeros denote the same number")
    func leadingZeros() throws {
        #expect(try Cursor(parsing: "007").positions == [7])
        // Many zeros never overflow, however long, as long as the text fits the length limit.
        #expect(try Cursor(parsing: String(repeating: "0", count: 100) + "1").positions == [1])
    }

    @Test(
        "rejects malformed text",
        arguments: [
            "", ".", "..", ".1", "1.", "1..2", "1...2", "a", "1a", "a1", "12x3", "-1", "+1", " 1", "1 ", "1,2", "1_000",
            "0x10", "1e3", "1.5e2", "١٢", "１", "\u{0}", "1\u{0}", "1\n", "∞", "NaN",
        ]
    )
    func rejectsMalformed(_ text: String) {
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: text) }
    }

    @Test("accepts up to 64 parts and rejects 65")
    func partLimit() throws {
        let sixtyFour = (1...64).map(String.init).joined(separator: ".")
        #expect(try Cursor(parsing: sixtyFour).positions == Array(1...64).map(UInt64.init))
        let sixtyFive = (1...65).map(String.init).joined(separator: ".")
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: sixtyFive) }
        let manyMore = Array(repeating: "1", count: 1000).joined(separator: ".")
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: manyMore) }
    }

    @Test("rejects text longer than maxTextLength")
    func textLengthLimit() throws {
        #expect(Cursor.maxTextLength == 512)
        let longest = String(repeating: "0", count: 512)
        #expect(try Cursor(parsing: longest).positions == [0])
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: longest + "0") }
        expectGatewayError(.badRequest) { _ = try Cursor(parsing: String(repeating: "1.", count: 1 << 16) + "1") }
    }

    @Test("parses a Substring")
    func parsesSubstring() throws {
        let header = "id: 42.43"
        #expect(try Cursor(parsing: header.dropFirst(4)).positions == [42, 43])
    }

    @Test(
        "description joins positions with dots and round-trips",
        arguments: [[0], [1], [UInt64.max], [1_764_000_000_123_456, 1_764_000_000_200_000], [5, 0, UInt64.max, 17]] as [[UInt64]]
    )
    func descriptionRoundTrips(_ positions: [UInt64]) throws {
        let cursor = Cursor(positions: positions)
        let expected = positions.map { String($0) }.joined(separator: ".")
        #expect(cursor.description == expected)
        #expect(try Cursor(parsing: cursor.description) == cursor)
    }

    @Test("an empty cursor renders as empty text")
    func emptyDescription() {
        #expect(Cursor(positions: []).description == "")
    }
}

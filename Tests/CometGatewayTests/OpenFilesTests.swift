import Foundation
import Testing

@testable import CometGateway

#if os(Linux)
/// The descriptor table is grown once at start, not by doubling during a connect storm.
@Suite("Open files")
struct OpenFilesTests {
    /// `FDSize` of /proc/self/status: the slots of this process's descriptor table.
    private static func tableSize() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("FDSize:") })
        return try #require(Int(line.dropFirst("FDSize:".count).trimmingCharacters(in: .whitespaces)))
    }

    @Test("Raising the limit grows the descriptor table to it in one step")
    func tableGrown() throws {
        let files = try #require(OpenFiles.raiseLimit())
        let expected = min(files, OpenFiles.maxReservedSlots)
        try #require(expected > 1024, "the test needs an open-file limit above 1024 (it is \(files))")
        #expect(try Self.tableSize() >= expected)
    }
}
#endif

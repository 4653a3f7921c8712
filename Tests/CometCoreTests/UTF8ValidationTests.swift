import CometCore
import Testing

@Suite("UTF8Validation")
struct UTF8ValidationTests {
    private func valid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { UTF8Validation.isValid($0) }
    }

    @Test("Agrees with the standard library on valid and invalid sequences", arguments: [
        [UInt8](), Array("plain ASCII text that is longer than eight bytes".utf8), Array("üñíçødé 😀 \u{10FFFF}".utf8),
        [0xC3], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF8],
        [0xFF, 0xFE], [0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0xE2, 0x82], [0xE2, 0x82, 0xAC], [0x80],
    ])
    func agreesWithStandardLibrary(bytes: [UInt8]) {
        #expect(self.valid(bytes) == (String(validating: bytes, as: UTF8.self) != nil))
    }

    @Test("Every two-byte prefix agrees with the standard library")
    func exhaustiveTwoBytes() {
        for first in 0...255 {
            for second in stride(from: 0, through: 255, by: 5) {
                let bytes: [UInt8] = [UInt8(first), UInt8(second), 0x80, 0x80]
                #expect(self.valid(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
            }
        }
    }
}

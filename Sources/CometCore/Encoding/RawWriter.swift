import NIOCore

/// Appends bytes to raw memory whose size the caller has already checked (in debug builds, it checks too).
///
/// Used inside one `ByteBuffer.writeWithUnsafeMutableBytes` call to assemble a head or a message's encodings:
/// each `ByteBuffer` write call has a fixed cost that a dozen small pieces would pay a dozen times.
package struct RawWriter {
    private let base: UnsafeMutablePointer<UInt8>
    package private(set) var count = 0
    #if DEBUG
    private let capacity: Int
    #endif

    package init(_ memory: UnsafeMutableRawBufferPointer) {
        self.base = memory.baseAddress!.assumingMemoryBound(to: UInt8.self)
        #if DEBUG
        self.capacity = memory.count
        #endif
    }

    package mutating func append(_ text: StaticString) {
        self.append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    package mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { self.append(UnsafeRawBufferPointer($0)) }
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        #if DEBUG
        precondition(self.count + bytes.count <= self.capacity)
        #endif
        guard bytes.count > 0 else { return }
        (self.base + self.count).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        self.count += bytes.count
    }

    /// Where the next byte goes.
    package var cursor: UnsafeMutablePointer<UInt8> { self.base + self.count }

    package mutating func advance(by count: Int) {
        #if DEBUG
        precondition(self.count + count <= self.capacity)
        #endif
        self.count += count
    }

    package mutating func appendByte(_ byte: UInt8) {
        #if DEBUG
        precondition(self.count < self.capacity)
        #endif
        self.base[self.count] = byte
        self.count += 1
    }

    package mutating func appendDecimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch: enough for 20 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = value
            var position = scratch.count
            repeat {
                position -= 1
                scratch[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            self.append(UnsafeRawBufferPointer(rebasing: scratch[position...]))
        }
    }
}


extension RawWriter {
    /// Appends `"…"` with `bytes` (valid UTF-8) escaped; `escapedLength` is ``JSONEncoding/quotedLength(_:)``.
    package mutating func appendJSONString(_ bytes: UnsafeRawBufferPointer, quotedLength: Int) {
        self.advance(by: JSONEncoding.writeQuoted(bytes, quotedLength: quotedLength, to: self.cursor))
    }
}

import NIOCore

/// Renders Server-Sent Events (HTML Living Standard, "Server-sent events").
public enum SSEEncoding {
    /// Appends `data:` lines for `payload`, one per line of the payload; CR, LF and CRLF all end a line, so a
    /// payload with any line endings arrives intact (with LF endings) in `MessageEvent.data`.
    public static func writeDataLines(_ payload: ByteBuffer, into buffer: inout ByteBuffer) {
        payload.withUnsafeReadableBytes { bytes in
            let bound = Self.dataLinesBound(bytes)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { memory in
                var out = RawWriter(memory)
                Self.writeDataLines(bytes, into: &out)
                return out.count
            }
        }
    }

    /// The most bytes ``writeDataLines(_:into:)-(UnsafeRawBufferPointer,_)`` writes for `payload`.
    package static func dataLinesBound(_ payload: UnsafeRawBufferPointer) -> Int {
        var breaks = 0
        for byte in payload where byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
            breaks += 1
        }
        return payload.count + 7 * (breaks + 1)  // "data: " and "\n" per line
    }

    /// Appends `data:` lines for `payload` to memory with room for ``dataLinesBound(_:)`` bytes.
    package static func writeDataLines(_ bytes: UnsafeRawBufferPointer, into out: inout RawWriter) {
        var lineStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                Self.writeDataLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index]), into: &out)
                if byte == UInt8(ascii: "\r"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") {
                    index += 1
                }
                lineStart = index + 1
            }
            index += 1
        }
        Self.writeDataLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<bytes.count]), into: &out)
    }

    private static func writeDataLine(_ line: UnsafeRawBufferPointer, into out: inout RawWriter) {
        out.append("data: ")
        out.append(line)
        out.appendByte(UInt8(ascii: "\n"))
    }

    /// Appends `id: CURSOR\n\n`: the end of an event, which also sets the client's `lastEventId`. On its own (after
    /// no `data:` line) it sets the cursor without dispatching an event.
    public static func writeIDAndEnd(_ cursor: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("id: ")
        buffer.writeString(cursor)
        buffer.writeStaticString("\n\n")
    }

    /// `retry: MS\n`: how long the client waits before reconnecting.
    public static func retry(milliseconds: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("retry: ")
        buffer.writeString(String(milliseconds))
        buffer.writeStaticString("\n")
        return buffer
    }

    /// The heartbeat: an SSE comment line, ignored by clients.
    public static let heartbeat = ByteBuffer(string: ":\n\n")

    /// An event with a name and a one-line JSON payload (used for the gateway's own `gap` and `close` events).
    public static func controlEvent(_ name: String, json: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("event: ")
        buffer.writeString(name)
        buffer.writeStaticString("\ndata: ")
        buffer.writeString(json)
        buffer.writeStaticString("\n\n")
        return buffer
    }
}
